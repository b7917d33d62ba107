// Image decoding (data/decode_image.h): the committed fixture files (tools/make_image_fixtures.py)
// against the pixels Pillow decodes them to (tests/fixtures/data/images_ref.safetensors):
// JPEG baseline / 4:4:4 / progressive / grey / CMYK, all eight EXIF orientations, scaled decode
// against Pillow's draft mode, PNG RGB / RGBA / grey / 16-bit / palette, GIF, BMP, palette indices
// (plain and interlaced, 8 and 4 bit); broken files give errors naming them; the EXIF parser on
// hostile segments; and the fuzzers' property over every fixture and systematic truncations.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "data/decode_image.h"
#include "data/decode_jpeg.h"
#include "data/decode_stb.h"
#include "data/exif.h"
#include "data/image_color.h"
#include "engine/io/safetensors.h"
#include "tests/fuzz/image_fuzz_check.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

const fs::path kImages = fs::path(RV_FIXTURE_DIR) / "images";

const std::map<std::string, Tensor>& refs() {
  static const auto r = load_safetensors((fs::path(RV_FIXTURE_DIR) / "images_ref.safetensors").string());
  return r;
}

std::string path_of(const std::string& name) { return (kImages / name).string(); }

// Largest |ours - reference| over all bytes, or -1 when the shapes differ (reported).
int max_diff(const Image& im, const Tensor& ref) {
  const int64_t C = ref.dim() == 3 ? ref.shape()[2] : 1;
  if (ref.shape()[0] != im.height || ref.shape()[1] != im.width || C != im.channels) {
    MESSAGE("shape: ours " << im.height << "x" << im.width << "x" << im.channels << ", reference " << ref.shape()[0] << "x"
                           << ref.shape()[1] << "x" << C);
    return -1;
  }
  const uint8_t* r = ref.data<uint8_t>();
  int worst = 0;
  for (size_t i = 0; i < im.pixels.size(); ++i) worst = std::max(worst, std::abs(int(im.pixels[i]) - int(r[i])));
  return worst;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// Both decoders are optional at build time (the GPU image has neither package): without one,
// its files must be refused with an error naming the Debian package, and the tests that need it
// are skipped (with a message).
bool have_decoders() {
  if (have_jpeg_decoder() && have_stb_decoder()) return true;
  MESSAGE("skipped: built without " << (have_jpeg_decoder() ? "" : "TurboJPEG ") << (have_stb_decoder() ? "" : "stb_image"));
  return false;
}

TEST_CASE("a decoder missing from the build is a clear error naming its package") {
  if (!have_jpeg_decoder())
    CHECK(error_of([] { read_image(path_of("rgb.jpg")); }).find("libturbojpeg0-dev") != std::string::npos);
  if (!have_stb_decoder())
    CHECK(error_of([] { read_image(path_of("rgb.png")); }).find("libstb-dev") != std::string::npos);
  CHECK(error_of([] { read_image(path_of("garbage.bin")); }).find("not an image") != std::string::npos);
}

TEST_CASE("every fixture decodes to Pillow's pixels") {
  if (!have_decoders()) return;
  int n = 0;
  for (const auto& [key, ref] : refs()) {
    if (key.find(".indices") != std::string::npos || key.find(".scale") != std::string::npos) continue;
    INFO("file " << key);
    Image im = read_image(path_of(key));
    // The JPEGs go through the same libjpeg-turbo ISLOW IDCT and fancy upsampling as Pillow's,
    // so they match exactly; everything else is lossless.
    CHECK(max_diff(im, ref) == 0);
    ++n;
  }
  CHECK(n == 23);
}

TEST_CASE("grey output is PIL's convert('L') of the RGB pixels, for colour and grey sources") {
  if (!have_decoders()) return;
  for (const char* name : {"rgb.jpg", "grey.jpg", "cmyk.jpg", "rgb.png", "grey.png", "exif6.jpg"}) {
    INFO("file " << name);
    Image rgb = read_image(path_of(name));
    Image grey = read_image(path_of(name), {.channels = 1});
    Image expect = rgb_to_grey(rgb);
    REQUIRE(grey.channels == 1);
    CHECK(grey.pixels == expect.pixels);
  }
}

TEST_CASE("EXIF orientation: parsed from the files, applied unless turned off, swapping axes for 5..8") {
  if (!have_decoders()) return;
  for (int o = 1; o <= 8; ++o) {
    const std::string b = read_file_bytes(path_of("exif" + std::to_string(o) + ".jpg"));
    const auto* d = reinterpret_cast<const uint8_t*>(b.data());
    CHECK(jpeg_exif_orientation(d, b.size()) == o);
    ImageInfo info = peek_image(d, b.size(), "x");
    CHECK(info.format == ImageFormat::jpeg);
    CHECK(info.height == (o >= 5 ? 21 : 13));
    CHECK(info.width == (o >= 5 ? 13 : 21));
    Image raw = decode_image(d, b.size(), "x", {.exif_orientation = false});
    CHECK(raw.height == 13);
    CHECK(apply_orientation(raw, o).pixels == decode_image(d, b.size(), "x").pixels);
  }
  CHECK(jpeg_exif_orientation(nullptr, 0) == 1);
}

TEST_CASE("EXIF parser: hostile segments are bounded and mean 'as stored'") {
  auto tiff = [](bool le, uint32_t ifd, uint16_t count, uint16_t tag, uint16_t type, uint32_t n, uint16_t value) {
    std::string t = le ? "II" : "MM";
    auto p16 = [&](uint16_t v) { t += le ? std::string{char(v), char(v >> 8)} : std::string{char(v >> 8), char(v)}; };
    auto p32 = [&](uint32_t v) {
      if (le) { for (int i = 0; i < 4; ++i) t += char(v >> (8 * i)); }
      else { for (int i = 3; i >= 0; --i) t += char(v >> (8 * i)); }
    };
    p16(42), p32(ifd), p16(count), p16(tag), p16(type), p32(n), p16(value), p16(0);
    return t;
  };
  auto orient = [](const std::string& t) { return tiff_orientation(reinterpret_cast<const uint8_t*>(t.data()), t.size()); };
  CHECK(orient(tiff(true, 8, 1, 0x0112, 3, 1, 6)) == 6);
  CHECK(orient(tiff(false, 8, 1, 0x0112, 3, 1, 8)) == 8);
  CHECK(orient(tiff(true, 8, 1, 0x0112, 3, 1, 9)) == 1);        // out of range
  CHECK(orient(tiff(true, 8, 1, 0x0112, 4, 1, 6)) == 1);        // wrong type
  CHECK(orient(tiff(true, 8, 1, 0x0100, 3, 1, 6)) == 1);        // another tag
  CHECK(orient(tiff(true, 8, 65535, 0x0100, 3, 1, 6)) == 1);    // count runs past the end
  CHECK(orient(tiff(true, 0xFFFFFFF0u, 1, 0x0112, 3, 1, 6)) == 1);  // IFD offset past the end
  std::string t = tiff(true, 8, 1, 0x0112, 3, 1, 6);
  for (size_t len = 0; len < t.size(); ++len) CHECK(orient(t.substr(0, len)) == (len >= 22 ? 6 : 1));  // header 8 + count 2 + entry 12
  // A JPEG whose APP1 length runs past the end of the file.
  const uint8_t bad[] = {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x', 'i', 'f', 0, 0};
  CHECK(jpeg_exif_orientation(bad, sizeof bad) == 1);
}

TEST_CASE("apply_orientation matches PIL's transposes on a 2x3 image") {
  Image im(2, 3, 1);
  for (int i = 0; i < 6; ++i) im.pixels[i] = uint8_t(i);  // 0 1 2 / 3 4 5
  auto px = [&](int o) { return apply_orientation(im, o).pixels; };
  CHECK(px(1) == std::vector<uint8_t>{0, 1, 2, 3, 4, 5});
  CHECK(px(2) == std::vector<uint8_t>{2, 1, 0, 5, 4, 3});
  CHECK(px(3) == std::vector<uint8_t>{5, 4, 3, 2, 1, 0});
  CHECK(px(4) == std::vector<uint8_t>{3, 4, 5, 0, 1, 2});
  CHECK(px(5) == std::vector<uint8_t>{0, 3, 1, 4, 2, 5});  // transpose
  CHECK(px(6) == std::vector<uint8_t>{3, 0, 4, 1, 5, 2});  // 90 clockwise
  CHECK(px(7) == std::vector<uint8_t>{5, 2, 4, 1, 3, 0});  // transverse
  CHECK(px(8) == std::vector<uint8_t>{2, 5, 1, 4, 0, 3});  // 90 counter-clockwise
}

TEST_CASE("scaled JPEG decode: the strongest 1/d that keeps the minimum size, with Pillow's draft pixels") {
  if (!have_decoders()) return;
  CHECK(jpeg_scale_denominator(83, 121, 0, 0) == 8);
  CHECK(jpeg_scale_denominator(83, 121, 11, 16) == 8);
  CHECK(jpeg_scale_denominator(83, 121, 12, 16) == 4);
  CHECK(jpeg_scale_denominator(83, 121, 21, 31) == 4);
  CHECK(jpeg_scale_denominator(83, 121, 22, 31) == 2);
  CHECK(jpeg_scale_denominator(83, 121, 42, 61) == 2);
  CHECK(jpeg_scale_denominator(83, 121, 43, 1) == 1);
  CHECK(jpeg_scale_denominator(83, 121, 1000, 1000) == 1);
  for (int d : {2, 4, 8}) {
    INFO("1/" << d);
    Image im = read_image(path_of("big.jpg"), {.min_height = (83 + d - 1) / d, .min_width = (121 + d - 1) / d});
    CHECK(im.height == (83 + d - 1) / d);
    CHECK(max_diff(im, refs().at("big.jpg.scale" + std::to_string(d))) == 0);
  }
  // No request: full size.
  CHECK(read_image(path_of("big.jpg")).width == 121);
  // The minimum is upright: for a 13x21 image stored rotated (orientation 6: stored 13 high, 21
  // wide, shown 21 high, 13 wide), asking for 11 x 7 upright allows 1/2 (stored 7 x 11).
  Image r = read_image(path_of("exif6.jpg"), {.min_height = 11, .min_width = 7});
  CHECK(r.height == 11);
  CHECK(r.width == 7);
}

TEST_CASE("PNG palette indices and grey label values, plain and interlaced, 8 and 4 bit") {
  if (!have_decoders()) return;
  for (const char* name : {"palette.png", "palette4.png", "palette_interlaced.png", "palette4_interlaced.png", "label_grey.png"}) {
    INFO("file " << name);
    Image im = read_png_indices(path_of(name));
    CHECK(max_diff(im, refs().at(std::string(name) + ".indices")) == 0);
  }
  CHECK(error_of([] { read_png_indices(path_of("rgb.png")); }).find("palette or grey PNG") != std::string::npos);
  CHECK(error_of([] { read_png_indices(path_of("grey16.png")); }).find("bit depth") != std::string::npos);
  CHECK(error_of([] { read_png_indices(path_of("rgb.jpg")); }).find("not a PNG") != std::string::npos);
}

TEST_CASE("broken files: a clear error naming the file, never a crash") {
  if (!have_decoders()) return;
  struct Case { const char* name; const char* says; };
  for (Case c : {Case{"truncated.jpg", "truncated"}, Case{"truncated.png", "corrupt or truncated"},
                 Case{"garbage.jpg", "JPEG"}, Case{"garbage.bin", "not an image"}, Case{"empty.jpg", "empty"}}) {
    INFO("file " << c.name);
    const std::string e = error_of([&] { read_image(path_of(c.name)); });
    CHECK(e.find(path_of(c.name)) != std::string::npos);
    CHECK_MESSAGE(e.find(c.says) != std::string::npos, e);
  }
  CHECK(error_of([] { read_png_indices(path_of("truncated.png")); }).find("truncated") != std::string::npos);
  const fs::path huge = fs::path(RV_SOURCE_DIR) / "tests" / "fuzz" / "corpus_image" / "png_huge_chunk";
  CHECK(error_of([&] { read_image(huge.string()); }).find("a chunk runs past the end of the file") != std::string::npos);
  CHECK(error_of([] { read_image(path_of("no_such_file.jpg")); }).find("cannot open") != std::string::npos);
  // The pixel limit is checked from the header, before decoding.
  for (const char* name : {"rgb.jpg", "rgb.png", "rgb.gif"})
    CHECK(error_of([&] { read_image(path_of(name), {.max_pixels = 100}); }).find("larger than") != std::string::npos);
  CHECK(error_of([] {
          const std::string b = read_file_bytes(path_of("palette.png"));
          decode_png_indices(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "p", 100);
        }).find("larger than the pixel limit") != std::string::npos);
  // The format comes from the bytes: a PNG named .JPEG (as one ImageNet file is) decodes.
  const std::string b = read_file_bytes(path_of("rgb.png"));
  CHECK(decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "x.JPEG").width == 37);
}

TEST_CASE("the fuzzers' property holds on every fixture and fuzz finding, every prefix and byte flips of them") {
  if (!have_decoders()) return;
  // tests/fuzz/corpus_image: inputs the fuzzers once found costly or undefined (a GIF claiming a
  // huge screen, a PNG chunk claiming 2 GB, an empty PNG data chunk), kept as regression seeds.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kImages)) files.push_back(e.path());
  for (const auto& e : fs::directory_iterator(fs::path(RV_SOURCE_DIR) / "tests" / "fuzz" / "corpus_image")) files.push_back(e.path());
  CHECK(files.size() >= 35);
  for (const fs::path& entry : files) {
    const std::string b = read_file_bytes(entry.string());
    const auto* d = reinterpret_cast<const uint8_t*>(b.data());
    INFO("file " << entry.filename().string());
    CHECK(fuzz::image_check_png(d, b.size()) == "");
    // Prefixes (truncations at every 7th byte) and single-byte corruptions at every 13th byte.
    for (size_t len = 0; len < b.size(); len += 7) CHECK(fuzz::image_check_png(d, len) == "");
    for (size_t i = 0; i < b.size(); i += 13) {
      std::string m = b;
      m[i] = char(m[i] ^ 0x5A);
      CHECK(fuzz::image_check_png(reinterpret_cast<const uint8_t*>(m.data()), m.size()) == "");
    }
  }
}

TEST_CASE("encode_jpeg round trip: the size and roughly the pixels come back") {
  if (!have_decoders()) return;
  Image im(37, 50, 3);
  for (int y = 0; y < 37; ++y)
    for (int x = 0; x < 50; ++x)
      for (int c = 0; c < 3; ++c) im.at(y, x, c) = uint8_t(2 * x + 2 * y + 30 * c);  // smooth ramps, no wrap-around
  const std::string j = encode_jpeg(im, 95);
  const Image back = decode_image(reinterpret_cast<const uint8_t*>(j.data()), j.size(), "encoded");
  REQUIRE(back.height == 37);
  REQUIRE(back.width == 50);
  double err = 0;
  for (size_t i = 0; i < im.pixels.size(); ++i) err += std::abs(int(im.pixels[i]) - int(back.pixels[i]));
  CHECK(err / im.pixels.size() < 3.0);
  const std::string g = encode_jpeg(rgb_to_grey(im), 90);
  CHECK(decode_image(reinterpret_cast<const uint8_t*>(g.data()), g.size(), "grey", {.channels = 1}).channels == 1);
  CHECK_THROWS_AS(encode_jpeg(im, 0), std::invalid_argument);
}

TEST_CASE("read_file_into: the whole file into a reused buffer; empty and missing files") {
  namespace fs = std::filesystem;
  std::string name = "rv_read_file_";
  name += std::to_string(::getpid());
  const fs::path dir = fs::temp_directory_path() / name;
  fs::create_directories(dir);
  // Sizes around the 16 KB probe after the size hint, and 0.
  std::string buf(300000, 'x');  // larger than every file: its capacity is reused, its size set
  for (size_t n : {size_t(0), size_t(1), size_t(16383), size_t(16384), size_t(16385), size_t(200001)}) {
    std::string content(n, '\0');
    for (size_t i = 0; i < n; ++i) content[i] = char((i * 131 + n) & 255);
    const std::string p = (dir / std::to_string(n)).string();
    {
      std::FILE* f = std::fopen(p.c_str(), "wb");
      REQUIRE(f);
      if (n) REQUIRE(std::fwrite(content.data(), 1, n, f) == n);
      std::fclose(f);
    }
    INFO("size " << n);
    read_file_into(p, buf);
    CHECK(buf == content);
    CHECK(read_file_bytes(p) == content);
  }
  CHECK_THROWS_WITH_AS(read_file_into((dir / "missing.jpg").string(), buf), doctest::Contains("missing.jpg: cannot open"),
                       std::runtime_error);
  fs::remove_all(dir);
}
