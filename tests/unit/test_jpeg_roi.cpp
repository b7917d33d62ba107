// Region-of-interest JPEG decode (data/decode_jpeg_roi.h): decode_jpeg_crop must give exactly the
// bytes of decode_jpeg at the same scale followed by crop, for odd boxes (at the borders, on and
// off iMCU boundaries, 1 px wide), every chroma subsampling, grey, progressive, restart markers,
// every DCT scale and every EXIF orientation; CMYK and truncated files go through the fallback;
// and the training pipeline gives the same tensors with roi_decode on and off.
// Files: tests/fixtures/data/images_roi/roi_*.jpg (tools/make_roi_fixtures.py), plus 4:4:0 / 4:1:1
// made here with encode_jpeg (Pillow cannot write those).
#include <array>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "data/decode_image.h"
#include "data/decode_jpeg.h"
#include "data/decode_jpeg_roi.h"
#include "data/image_ops.h"
#include "data/image_pipeline.h"
#include "engine/rng.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

const fs::path kImages = fs::path(RV_FIXTURE_DIR) / "images_roi";
const fs::path kFixtureImages = fs::path(RV_FIXTURE_DIR) / "images";

// roi_*.jpg from images_roi/, the others (cmyk.jpg) from the decoder's fixtures.
std::string bytes_of(const std::string& name) {
  return read_file_bytes(((name.rfind("roi_", 0) == 0 ? kImages : kFixtureImages) / name).string());
}
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Largest |a - b| over all bytes; -1 when the shapes differ.
int max_diff(const Image& a, const Image& b) {
  if (a.height != b.height || a.width != b.width || a.channels != b.channels) return -1;
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return worst;
}

struct Box {
  int top, left, height, width;
};

// Boxes worth checking on an H x W image: the whole image, each corner pixel, 1-px strips along
// each border, boxes starting / ending on and next to the 8- and 16-px iMCU boundaries, and
// seeded random boxes.
std::vector<Box> boxes_for(int H, int W, int n_random, uint32_t seed) {
  std::vector<Box> b = {{0, 0, H, W}, {0, 0, 1, 1}, {H - 1, W - 1, 1, 1}, {0, W - 1, H, 1}, {H - 1, 0, 1, W}, {0, 0, H, 1}};
  for (int e : {7, 8, 9, 15, 16, 17}) {
    if (e < H && e < W) {
      b.push_back({e, e, H - e, W - e});   // starts at e, to the bottom-right border
      b.push_back({0, 0, e, e});           // ends at e
      b.push_back({e, e, std::min(5, H - e), std::min(3, W - e)});
    }
  }
  std::mt19937 rng(seed);
  for (int i = 0; i < n_random; ++i) {
    const int h = 1 + int(rng() % uint32_t(H)), w = 1 + int(rng() % uint32_t(W));
    b.push_back({int(rng() % uint32_t(H - h + 1)), int(rng() % uint32_t(W - w + 1)), h, w});
  }
  return b;
}

// Every box at every scale: region decode == whole decode + crop, bit for bit. The scales are
// 1/1, 1/2, 1/4, 1/8 and libjpeg-turbo's other M/8 (3x3, 5x5, 6x6, 7x7 IDCTs, which the fast
// resize mode's scaled decode uses); the whole decode is TurboJPEG's tjDecompress2 at that scale.
void check_exact(const std::string& bytes, const std::string& what, int channels, bool exif, int n_random = 25) {
  const int scales[][2] = {{1, 1}, {1, 2}, {1, 4}, {1, 8}, {3, 8}, {5, 8}, {6, 8}, {7, 8}};
  for (const auto& [num, d] : scales) {
    const DecodeOptions opt{.scale_denom = d, .scale_num = num, .exif_orientation = exif, .channels = channels};
    const Image full = decode_image(u8(bytes), bytes.size(), what, opt);
    for (const Box& b : boxes_for(full.height, full.width, n_random, uint32_t(d * 7919 + num * 31 + channels))) {
      INFO(what << " " << num << "/" << d << " C" << channels << " box " << b.height << "x" << b.width << " at (" << b.top << ", "
                << b.left << ") of " << full.height << "x" << full.width);
      const Image roi = decode_jpeg_crop(u8(bytes), bytes.size(), what, b.top, b.left, b.height, b.width, d, opt);
      REQUIRE(max_diff(roi, crop(full, b.top, b.left, b.height, b.width)) == 0);
    }
  }
}

// Fast mode's M / 8 scaled decode (scales 2/8 .. 7/8) + fast resize against the exact chain on
// the tiled 1000 x 750 photo below: measured mean |d| 1.92 levels, max 42 (its mirrored seams
// are sharper than a photo: on the bench photos the mean is 0.4 - 1.0, docs/perf.md). Mapping
// the crop to whole scaled pixels instead of the sub-pixel box (exact mode's integer path)
// shifts edges by up to half a scaled pixel: mean ~2 - 3, max > 100 on the bench photos.
constexpr double kScaledDecodeMeanBound = 2.5;
constexpr int kScaledDecodeMaxBound = 56;

// TurboJPEG is optional at build time (the GPU image lacks it): then these tests are skipped.
bool have_jpeg() {
  if (!have_jpeg_decoder()) MESSAGE("skipped: built without TurboJPEG");
  return have_jpeg_decoder();
}

}  // namespace

TEST_CASE("region decode == whole decode + crop: chroma 4:4:4 / 4:2:2 / 4:2:0, grey, progressive, restarts") {
  if (!have_jpeg()) return;
  if (!have_jpeg_roi_decoder()) MESSAGE("built without the libjpeg API: this checks the fallback (decode all, crop)");
  for (const char* name : {"roi_444.jpg", "roi_422.jpg", "roi_420.jpg", "roi_grey.jpg", "roi_progressive.jpg",
                           "roi_restart_blocks.jpg", "roi_restart_rows.jpg"}) {
    check_exact(bytes_of(name), name, 3, true);
  }
  // Grey output: from a grey source (no conversion) and from colour (PIL's L of the RGB box).
  check_exact(bytes_of("roi_grey.jpg"), "roi_grey.jpg", 1, true, 8);
  check_exact(bytes_of("roi_420.jpg"), "roi_420.jpg", 1, true, 8);
}

TEST_CASE("region decode == whole decode + crop: 4:4:0 and 4:1:1, and a 500x375 photo-sized image") {
  if (!have_jpeg()) return;
  const std::string src = bytes_of("roi_444.jpg");
  const Image im = decode_image(u8(src), src.size(), "roi_444.jpg");
  for (const char* ss : {"4:4:0", "4:1:1"}) check_exact(encode_jpeg(im, 90, ss), std::string("encoded ") + ss, 3, false, 15);
  // 500x375, the common ImageNet size: the photo tiled with mirrored copies (many iMCU rows to skip).
  Image big(375, 500, 3);
  for (int y = 0; y < big.height; ++y)
    for (int x = 0; x < big.width; ++x) {
      const int ty = (y / im.height) % 2 ? im.height - 1 - y % im.height : y % im.height;
      const int tx = (x / im.width) % 2 ? im.width - 1 - x % im.width : x % im.width;
      for (int c = 0; c < 3; ++c) big.at(y, x, c) = im.at(ty, tx, c);
    }
  check_exact(encode_jpeg(big, 90), "encoded 500x375 4:2:0", 3, false, 10);
}

TEST_CASE("region decode with EXIF orientation: the upright box is mapped onto the stored pixels") {
  if (!have_jpeg()) return;
  for (int o = 1; o <= 8; ++o) {
    const std::string name = "roi_exif" + std::to_string(o) + ".jpg";
    const std::string b = bytes_of(name);
    check_exact(b, name, 3, true, 10);
    // Upright size: 150 wide x 113 high stored, swapped for 5..8.
    const Image im = decode_jpeg_crop(u8(b), b.size(), name, 0, 0, o >= 5 ? 150 : 113, o >= 5 ? 113 : 150, 1);
    CHECK(im.height == (o >= 5 ? 150 : 113));
    // Orientation ignored: the stored pixels.
    check_exact(b, name + " (EXIF off)", 3, false, 4);
  }
}

TEST_CASE("region decode fallbacks: CMYK, truncated and corrupt files, bad requests") {
  if (!have_jpeg()) return;
  check_exact(bytes_of("cmyk.jpg"), "cmyk.jpg", 3, true, 5);  // decoded whole (PIL's CMYK conversion), then cut
  // A file cut short is an error naming it, never a crash, even when the cut is below the box
  // (the region decode never reads that far, so a file without EOI goes to the whole decoder).
  const std::string f = bytes_of("roi_420.jpg");
  for (size_t n : {size_t(0), size_t(2), size_t(100), size_t(700), f.size() / 2, f.size() - 40, f.size() - 2}) {
    INFO("first " << n << " bytes");
    try {
      decode_jpeg_crop(u8(f), n, "cut.jpg", 0, 0, 8, 8, 1);
      FAIL("a truncated file decoded");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).rfind("cut.jpg: ", 0) == 0);
    }
  }
  // Corrupt entropy data inside the box, with the EOI still at the end: an error or an image,
  // never a crash (libjpeg's corrupt-data warnings are accepted, as decode_jpeg accepts them).
  std::string bad = f;
  for (size_t i = 700; i < bad.size() - 2; i += 97) bad[i] = char(0xFF);
  try {
    const Image im = decode_jpeg_crop(u8(bad), bad.size(), "bad.jpg", 10, 10, 50, 60, 1);
    CHECK(im.height == 50);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).rfind("bad.jpg: ", 0) == 0);
  }
  CHECK_THROWS_AS(decode_jpeg_crop(u8(f), f.size(), "x.jpg", 100, 0, 14, 10, 1), std::invalid_argument);  // 113 rows
  CHECK_THROWS_AS(decode_jpeg_crop(u8(f), f.size(), "x.jpg", 0, 0, 15, 20, 8), std::invalid_argument);   // 15x19 at 1/8
  CHECK_THROWS_AS(decode_jpeg_crop(u8(f), f.size(), "x.jpg", 0, 0, 0, 5, 1), std::invalid_argument);
  CHECK_THROWS_AS(decode_jpeg_crop(u8(f), f.size(), "x.jpg", 0, 0, 5, 5, 3), std::invalid_argument);
  CHECK_NOTHROW(decode_jpeg_crop(u8(f), f.size(), "x.jpg", 0, 0, 15, 19, 8));
}

TEST_CASE("train_transform: the same tensors with roi_decode on and off (scaled or not, both resize modes, EXIF rotated)") {
  if (!have_jpeg()) return;
  for (const char* name : {"roi_420.jpg", "roi_exif6.jpg", "roi_progressive.jpg", "cmyk.jpg"}) {
    const std::string b = bytes_of(name);
    for (const auto& [scaled, mode] : {std::pair{false, ResizeMode::exact}, std::pair{true, ResizeMode::exact},
                                       std::pair{false, ResizeMode::fast}, std::pair{true, ResizeMode::fast}}) {
      TrainTransformOptions opt;
      opt.size = 24;  // small output, so that scaled decode picks 1/2 .. 1/4 (M / 8 in fast mode) on these small files
      opt.augment = TrainAugment::three_augment;
      opt.scaled_decode = scaled;
      opt.resize = mode;
      opt.fast_decode_scales = {1, 2, 3, 4, 5, 6, 7};  // every scaled IDCT
      Generator g1(5), g2(5);
      RandomDraws r1(g1), r2(g2);
      for (int i = 0; i < 12; ++i) {
        INFO(name << " scaled " << scaled << " " << resize_mode_name(mode) << " draw " << i);
        opt.roi_decode = true;
        const Tensor a = train_transform(u8(b), b.size(), name, opt, nullptr, r1);
        opt.roi_decode = false;
        const Tensor c = train_transform(u8(b), b.size(), name, opt, nullptr, r2);
        REQUIRE(a.numel() == c.numel());
        CHECK(std::memcmp(a.data<float>(), c.data<float>(), size_t(a.numel()) * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("fast mode's DCT scale rule: the smallest listed M / 8 that keeps the crop >= the output both ways") {
  const std::vector<int> all = {1, 2, 3, 4, 5, 6, 7};
  CHECK(fast_decode_eighths({0, 0, 375, 500}, 224, all) == 5);   // 375 * 5/8 = 234.4 >= 224 > 375 * 4/8
  CHECK(fast_decode_eighths({0, 0, 256, 256}, 224, all) == 7);   // exactly 224 at 7/8: allowed (no upsample)
  CHECK(fast_decode_eighths({0, 0, 255, 400}, 224, all) == 8);   // 255 * 7/8 = 223.1 < 224: full size
  CHECK(fast_decode_eighths({3, 9, 448, 900}, 224, all) == 4);
  CHECK(fast_decode_eighths({0, 0, 1792, 1800}, 224, all) == 1);
  CHECK(fast_decode_eighths({0, 0, 1792, 1800}, 224, {2, 4}) == 2);  // only the listed scales
  CHECK(fast_decode_eighths({0, 0, 375, 500}, 224, {2, 4}) == 8);
  CHECK(fast_decode_eighths({0, 0, 375, 500}, 224, {}) == 8);
  CHECK_THROWS_WITH_AS(fast_decode_eighths({0, 0, 375, 500}, 224, {9}), doctest::Contains("fast_decode_eighths"),
                       std::invalid_argument);
  // The decoder's own checks of a scale.
  CHECK(jpeg_scale_eighths(3, 8, "x") == 3);
  CHECK(jpeg_scale_eighths(1, 2, "x") == 4);
  CHECK_THROWS_WITH_AS(jpeg_scale_eighths(3, 4, "x.jpg"), doctest::Contains("x.jpg: the JPEG DCT scale"), std::invalid_argument);
  CHECK_THROWS_AS(jpeg_scale_eighths(9, 8, "x"), std::invalid_argument);
  CHECK(jpeg_scaled_size(375, 5) == 235);
  CHECK(jpeg_scaled_size(500, 3) == 188);
}

TEST_CASE("fast mode's M / 8 scaled decode: the region decoded and the float box, against the exact chain") {
  if (!have_jpeg()) return;
  // A 1000 x 750 photo-like JPEG (the roi photo tiled with mirrored copies, as above): crops
  // of 224 .. 750 pixels, so that every scale 2/8 .. 8/8 is drawn.
  const std::string src = bytes_of("roi_444.jpg");
  const Image im = decode_image(u8(src), src.size(), "roi_444.jpg");
  Image big(750, 1000, 3);
  for (int y = 0; y < big.height; ++y)
    for (int x = 0; x < big.width; ++x) {
      const int ty = (y / im.height) % 2 ? im.height - 1 - y % im.height : y % im.height;
      const int tx = (x / im.width) % 2 ? im.width - 1 - x % im.width : x % im.width;
      for (int c = 0; c < 3; ++c) big.at(y, x, c) = im.at(ty, tx, c);
    }
  const std::string jpg = encode_jpeg(big, 90);
  const Image full = decode_image(u8(jpg), jpg.size(), "big");
  const ImageInfo info = peek_image(u8(jpg), jpg.size(), "big");
  TrainTransformOptions opt;
  opt.fast_decode_scales = {1, 2, 3, 4, 5, 6, 7};
  Generator gen(11);
  double sum_abs = 0;
  size_t bytes = 0;
  int worst = 0;
  std::array<int, 9> used{};
  for (int i = 0; i < 40; ++i) {
    const CropBox c = random_resized_crop_params(info.height, info.width, gen, opt.rrc);
    CropBox box;
    ResizeBox sub;
    const Image dec = train_decode(u8(jpg), jpg.size(), "big", info, opt, c, box, sub);
    const int m = fast_decode_eighths(c, opt.size, opt.fast_decode_scales);
    INFO("crop " << c.height << "x" << c.width << " at (" << c.top << ", " << c.left << "), M = " << m);
    // The decoded region is the scaled image's pixels of the box's hull, bit for bit.
    const DecodeOptions whole{.scale_denom = 8, .scale_num = m};
    const Image scaled_full = decode_image(u8(jpg), jpg.size(), "big", whole);
    const int top = int(std::floor(double(c.top) * m / 8)), left = int(std::floor(double(c.left) * m / 8));
    REQUIRE(max_diff(dec, crop(scaled_full, top, left, dec.height, dec.width)) == 0);
    // The float box is the crop's exact place in the scaled image.
    CHECK(double(sub.top) + top == doctest::Approx(double(c.top) * m / 8));
    CHECK(double(sub.bottom) - sub.top == doctest::Approx(double(c.height) * m / 8));
    CHECK(double(sub.right) - sub.left == doctest::Approx(double(c.width) * m / 8));
    CHECK(sub.bottom <= float(dec.height));
    CHECK(sub.right <= float(dec.width));
    ++used[size_t(m)];
    // The resized crop against the exact chain (whole decode, crop, Pillow's resize).
    Image fast, exact;
    resize_box_into(crop_view(dec, int(box.top), int(box.left), int(box.height), int(box.width)), sub, 224, 224, opt.interp,
                    fast, ResizeMode::fast);
    resize_into(crop_view(full, int(c.top), int(c.left), int(c.height), int(c.width)), 224, 224, opt.interp, exact,
                ResizeMode::exact);
    REQUIRE(fast.pixels.size() == exact.pixels.size());
    for (size_t k = 0; k < fast.pixels.size(); ++k) {
      const int d = std::abs(int(fast.pixels[k]) - int(exact.pixels[k]));
      sum_abs += d, worst = std::max(worst, d);
    }
    bytes += fast.pixels.size();
  }
  for (int m : {3, 4, 5, 6, 7}) CHECK(used[size_t(m)] > 0);  // the draws reach the scaled IDCTs
  const double mean_abs = sum_abs / double(bytes);
  MESSAGE("M / 8 decode + float box + fast resize vs exact: mean |d| " << mean_abs << ", max " << worst);
  CHECK(mean_abs <= kScaledDecodeMeanBound);
  CHECK(worst <= kScaledDecodeMaxBound);
}
