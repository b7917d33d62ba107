// ResizeMode::fast (data/pil_resize.h): Pillow's resize with 16-bit weights.
//   - its bytes against the same arithmetic written as a plain loop here (the precisions P
//     chosen plainly, the <= 1 level inequality that picks the 16-bit-intermediate path
//     evaluated plainly, every sum in int64), so the SIMD passes (AVX2 horizontal and vertical
//     multiply-adds, both intermediates) are checked bit for bit on odd sizes, both filters,
//     RGB and grey;
//   - the property the option promises: max |fast - exact| <= 1 grey level, on hundreds of
//     random sizes and scales of noise images (the worst case: every pixel differs from its
//     neighbours, so the sums land anywhere relative to the rounding edges) and of hard-edged
//     stripes (the negative lobes at full swing);
//   - exact mode on weights that fit 16 bits (a strong shrink) also takes the single
//     multiply-add paths: still Pillow's algorithm bit for bit (P = 22);
//   - the option's parsing and its use in train_transform.
// Pillow's own pixels (exact mode) are checked in tests/fixtures/test_transforms.cpp and the
// exact SIMD paths in tests/unit/test_fused_color.cpp.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "data/decode_jpeg.h"
#include "data/image_ops.h"
#include "data/image_pipeline.h"
#include "data/pil_resize.h"
#include "tests/support/check.h"
#include "tests/support/noise_image.h"

using namespace rv;
using namespace rv::data;
using rv::test::noise_image;

namespace {

double kernel(double x, Interp interp) {
  x = std::fabs(x);
  if (interp == Interp::bilinear) return x < 1 ? 1 - x : 0;
  const double a = -0.5;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

int32_t fixed(double v, int prec) { return int32_t(v < 0 ? -0.5 + v * double(1 << prec) : 0.5 + v * double(1 << prec)); }

// One axis: first input, double weights and fixed-point weights per output, at 22 bits (exact)
// or at the largest P <= max_prec where the largest |weight| still rounds to <= 32767 (fast).
struct Axis {
  int prec = 22;
  std::vector<int> lo;
  std::vector<std::vector<double>> d;
  std::vector<std::vector<int32_t>> w;
};

// [in0, in1): the source interval mapped onto the output (Pillow's box; default the whole axis).
Axis ref_axis(int in, int out, Interp interp, ResizeMode mode, int max_prec = 22, float in0 = 0, float in1 = -1) {
  if (in1 < 0) in1 = float(in);
  const double scale = (double(in1) - double(in0)) / out, fs = std::max(scale, 1.0);
  const double support = (interp == Interp::bilinear ? 1.0 : 2.0) * fs;
  Axis a;
  a.d.resize(size_t(out));
  a.lo.assign(size_t(out), 0);
  double max_w = 0;
  for (int i = 0; i < out; ++i) {
    const double c = double(in0) + (i + 0.5) * scale;
    const int first = std::max(int(c - support + 0.5), 0), last = std::min(int(c + support + 0.5), in);
    double sum = 0;
    for (int j = first; j < last; ++j) a.d[size_t(i)].push_back(kernel((j - c + 0.5) / fs, interp)), sum += a.d[size_t(i)].back();
    for (double& v : a.d[size_t(i)]) v = sum != 0 ? v / sum : v, max_w = std::max(max_w, std::fabs(v));
    a.lo[size_t(i)] = first;
  }
  if (mode == ResizeMode::fast) {
    a.prec = 0;
    while (a.prec < max_prec && fixed(max_w, a.prec + 1) <= 32767) ++a.prec;
  }
  a.w.resize(size_t(out));
  for (int i = 0; i < out; ++i)
    for (double v : a.d[size_t(i)]) a.w[size_t(i)].push_back(fixed(v, a.prec));
  return a;
}

uint8_t clip(int64_t acc, int prec) {
  const int64_t v = acc >> prec;
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Fast mode's choice (pil_resize.h), written out: the 16-bit intermediate (F = 7 fraction bits,
// vertical P <= 15) where |fast - exact| < 1 before the last rounding is guaranteed by
//   (0.5 + 2^-(F+1) + 255 (E22_h + E16_h)) * max sum|u| + 255 * max sum|u - v| < 1
// (E: a horizontal output's summed weight rounding error; u, v: the vertical weights at 22
// bits and at P) and the vertical int32 sums cannot overflow.
bool ref_mid16_applies(const Axis& h, const Axis& v22, const Axis& v) {
  auto err = [](const Axis& q, const Axis& r) {  // max over outputs of sum |q - r| (as fractions)
    double m = 0;
    for (size_t i = 0; i < q.w.size(); ++i) {
      double e = 0;
      for (size_t k = 0; k < q.w[i].size(); ++k) e += std::fabs(q.w[i][k] / std::ldexp(1.0, q.prec) - r.w[i][k] / std::ldexp(1.0, r.prec));
      m = std::max(m, e);
    }
    return m;
  };
  auto err_d = [](const Axis& q) {  // against the double weights
    double m = 0;
    for (size_t i = 0; i < q.w.size(); ++i) {
      double e = 0;
      for (size_t k = 0; k < q.w[i].size(); ++k) e += std::fabs(q.w[i][k] / std::ldexp(1.0, q.prec) - q.d[i][k]);
      m = std::max(m, e);
    }
    return m;
  };
  Axis h22 = h;  // the same weights at 22 bits
  h22.prec = 22;
  for (size_t i = 0; i < h.d.size(); ++i)
    for (size_t k = 0; k < h.d[i].size(); ++k) h22.w[i][k] = fixed(h.d[i][k], 22);
  double su = 0;
  int64_t sv = 0;
  for (size_t i = 0; i < v22.w.size(); ++i) {
    double a = 0;
    int64_t b = 0;
    for (size_t k = 0; k < v22.w[i].size(); ++k) a += std::fabs(v22.w[i][k] / std::ldexp(1.0, 22)), b += std::abs(int64_t(v.w[i][k]));
    su = std::max(su, a), sv = std::max(sv, b);
  }
  const double gap = 0.5 + 1.0 / 256 + 255 * (err_d(h22) + err_d(h));
  return gap * su + 255 * err(v22, v) < 1 && 32640 * sv + (int64_t(1) << (7 + v.prec - 1)) < (int64_t(1) << 31);
}

// Resize written plainly, every sum in int64. Fast mode: the path fast mode takes for these sizes.
// `box`: Pillow's box argument (resize_box_into); null: the whole image.
Image ref_resize(const Image& src, int oh, int ow, Interp interp, ResizeMode mode, bool* used_mid16 = nullptr,
                 const ResizeBox* box = nullptr) {
  const int C = src.channels;
  const ResizeBox b = box ? *box : ResizeBox{0, 0, float(src.height), float(src.width)};
  const bool need_h = ow != src.width || b.left != 0 || b.right != float(src.width);
  const bool need_v = oh != src.height || b.top != 0 || b.bottom != float(src.height);
  if (used_mid16) *used_mid16 = false;
  if (mode == ResizeMode::fast && need_h && need_v) {
    const Axis h = ref_axis(src.width, ow, interp, ResizeMode::fast, 22, b.left, b.right);
    const Axis v = ref_axis(src.height, oh, interp, ResizeMode::fast, 15, b.top, b.bottom);
    if (ref_mid16_applies(h, ref_axis(src.height, oh, interp, ResizeMode::exact, 22, b.top, b.bottom), v)) {
      if (used_mid16) *used_mid16 = true;
      // The 16-bit intermediate: the horizontal sums rounded to 7 fraction bits, clipped to 0 .. 255 * 2^7.
      std::vector<int64_t> mid(size_t(src.height) * ow * C);
      for (int y = 0; y < src.height; ++y)
        for (int x = 0; x < ow; ++x)
          for (int c = 0; c < C; ++c) {
            int64_t acc = int64_t(1) << (h.prec - 7 - 1);
            for (size_t k = 0; k < h.w[size_t(x)].size(); ++k)
              acc += int64_t(src.at(y, h.lo[size_t(x)] + int(k), c)) * h.w[size_t(x)][k];
            mid[(size_t(y) * ow + x) * C + c] = std::clamp<int64_t>(acc >> (h.prec - 7), 0, 32640);
          }
      Image out(oh, ow, C);
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < ow; ++x)
          for (int c = 0; c < C; ++c) {
            int64_t acc = int64_t(1) << (7 + v.prec - 1);
            for (size_t k = 0; k < v.w[size_t(y)].size(); ++k)
              acc += mid[(size_t(v.lo[size_t(y)] + int(k)) * ow + x) * C + c] * v.w[size_t(y)][k];
            out.at(y, x, c) = clip(acc, 7 + v.prec);
          }
      return out;
    }
  }
  Image mid = src;
  if (need_h) {
    const Axis a = ref_axis(src.width, ow, interp, ResizeMode::exact, 22, b.left, b.right);  // Pillow's 8-bit intermediate
    mid = Image(src.height, ow, C);
    for (int y = 0; y < src.height; ++y)
      for (int x = 0; x < ow; ++x)
        for (int c = 0; c < C; ++c) {
          int64_t acc = int64_t(1) << (a.prec - 1);
          for (size_t k = 0; k < a.w[size_t(x)].size(); ++k)
            acc += int64_t(src.at(y, a.lo[size_t(x)] + int(k), c)) * a.w[size_t(x)][k];
          mid.at(y, x, c) = clip(acc, a.prec);
        }
  }
  if (!need_v) return mid;
  const Axis a = ref_axis(src.height, oh, interp, mode, 22, b.top, b.bottom);
  Image out(oh, ow, C);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      for (int c = 0; c < C; ++c) {
        int64_t acc = int64_t(1) << (a.prec - 1);
        for (size_t k = 0; k < a.w[size_t(y)].size(); ++k)
          acc += int64_t(mid.at(a.lo[size_t(y)] + int(k), x, c)) * a.w[size_t(y)][k];
        out.at(y, x, c) = clip(acc, a.prec);
      }
  return out;
}

int max_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

}  // namespace

TEST_CASE("resize fast: the 16-bit-weight arithmetic written plainly, bit for bit (SIMD passes included)") {
  // Odd widths (vector loads past the row end, edge pixels with fewer taps), row lengths that
  // are not multiples of 16 (the vertical pass's scalar tail), up, down by up to ~8x (many
  // taps: more than one step, a large P), one axis only, 1 pixel wide.
  const int shapes[][4] = {{37, 53, 19, 23}, {300, 401, 224, 224}, {229, 460, 224, 224}, {17, 9, 40, 31},
                           {5, 1, 7, 3},     {1, 7, 1, 2},         {64, 200, 64, 61},   {90, 33, 30, 33},
                           {45, 700, 20, 224}, {224, 225, 224, 224}, {500, 375, 61, 47}, {3, 3, 2, 2},
                           {122, 97, 224, 224}, {700, 600, 7, 5}};
  int n = 0, mid16 = 0, mid8 = 0;
  for (const auto& s : shapes)
    for (Interp interp : {Interp::bilinear, Interp::bicubic})
      for (int c : {3, 1}) {
        const Image src = noise_image(s[0], s[1], c, uint64_t(n++));
        const int in_h = s[0], in_w = s[1], out_h = s[2], out_w = s[3];
        CAPTURE(in_h);
        CAPTURE(in_w);
        CAPTURE(out_h);
        CAPTURE(out_w);
        CAPTURE(c);
        bool used_mid16 = false;
        REQUIRE(resize(src, out_h, out_w, interp, ResizeMode::fast).pixels ==
                ref_resize(src, out_h, out_w, interp, ResizeMode::fast, &used_mid16).pixels);
        mid16 += used_mid16, mid8 += !used_mid16 && in_h != out_h && in_w != out_w;
        // Exact mode on the same shapes: Pillow's 22-bit arithmetic (its single multiply-add
        // paths when the weights fit 16 bits, i.e. a shrink by more than ~128x).
        REQUIRE(resize(src, out_h, out_w, interp, ResizeMode::exact).pixels ==
                ref_resize(src, out_h, out_w, interp, ResizeMode::exact).pixels);
      }
  // Both fast paths ran: the 16-bit intermediate, and the 8-bit one where its bound fails (the
  // 100x shrink of 700 x 600 -> 7 x 5: hundreds of vertical taps at P = 15).
  CHECK(mid16 > 0);
  CHECK(mid8 > 0);
  // A crop view (row stride > width) and resize_into's reused buffer give the same bytes.
  const Image big = noise_image(80, 120, 3, 99);
  Image reused;
  for (const auto& sz : {std::array<int, 2>{50, 70}, {12, 9}, {61, 40}, {30, 97}}) {
    resize_into(crop_view(big, 7, 13, 61, 97), sz[0], sz[1], Interp::bicubic, reused, ResizeMode::fast);
    CHECK(reused.pixels == ref_resize(crop(big, 7, 13, 61, 97), sz[0], sz[1], Interp::bicubic, ResizeMode::fast).pixels);
  }
}

TEST_CASE("resize_box_into: Pillow's box argument (sub-pixel source rectangles), both modes, bit for bit the plain loop") {
  // Float boxes anywhere in the image: near the edges (taps clamped at the image, not at the
  // box), narrower than the output (upsampling along one axis), integer boxes (still not a crop:
  // the taps reach past the box), and the whole image (== resize).
  std::mt19937 rng(77);
  auto unit = [&]() { return std::uniform_real_distribution<float>(0.0f, 1.0f)(rng); };
  int n = 0;
  for (int i = 0; i < 60; ++i) {
    const int ih = 9 + int(rng() % 200), iw = 9 + int(rng() % 200), c = i % 5 == 4 ? 1 : 3;
    const Image src = noise_image(ih, iw, c, uint64_t(700 + i));
    const float t = unit() * 0.5f * float(ih), l = unit() * 0.5f * float(iw);
    ResizeBox box{t, l, t + (0.05f + 0.95f * unit()) * (float(ih) - t), l + (0.05f + 0.95f * unit()) * (float(iw) - l)};
    if (i % 10 == 3) box = {std::floor(box.top), std::floor(box.left), std::ceil(box.bottom), std::ceil(box.right)};
    if (i % 10 == 7) box = {0, 0, float(ih), float(iw)};
    const int oh = i % 3 == 0 ? 150 : 1 + int(rng() % 100), ow = i % 3 == 0 ? 150 : 1 + int(rng() % 100);
    const Interp interp = i % 4 == 1 ? Interp::bilinear : Interp::bicubic;
    CAPTURE(ih);
    CAPTURE(iw);
    CAPTURE(box.top);
    CAPTURE(box.left);
    CAPTURE(box.bottom);
    CAPTURE(box.right);
    CAPTURE(oh);
    CAPTURE(ow);
    for (ResizeMode mode : {ResizeMode::exact, ResizeMode::fast}) {
      Image out;
      resize_box_into(view_of(src), box, oh, ow, interp, out, mode);
      REQUIRE(out.pixels == ref_resize(src, oh, ow, interp, mode, nullptr, &box).pixels);
      if (box.top == 0 && box.left == 0 && box.bottom == float(ih) && box.right == float(iw))
        CHECK(out.pixels == resize(src, oh, ow, interp, mode).pixels);
      ++n;
    }
  }
  CHECK(n == 120);
  // A box on a crop view: the taps stop at the view's edges (the view is the image).
  const Image big = noise_image(90, 110, 3, 5);
  Image a;
  const ResizeBox box{3.25f, 7.5f, 51.75f, 80.125f};
  resize_box_into(crop_view(big, 10, 12, 60, 90), box, 37, 41, Interp::bicubic, a, ResizeMode::fast);
  CHECK(a.pixels == ref_resize(crop(big, 10, 12, 60, 90), 37, 41, Interp::bicubic, ResizeMode::fast, nullptr, &box).pixels);
  // Errors name the op and the box.
  CHECK_THROWS_WITH_AS(resize_box_into(view_of(big), {0, 0, 91, 10}, 5, 5, Interp::bicubic, a),
                       doctest::Contains("resize: the box"), std::invalid_argument);
  CHECK_THROWS_AS(resize_box_into(view_of(big), {5, 5, 5, 10}, 5, 5, Interp::bicubic, a), std::invalid_argument);
}

TEST_CASE("resize exact: a shrink by 256x (every 22-bit weight fits 16 bits) takes the single multiply-add paths, still exact") {
  // 2048 -> 8: ~1/512 per weight at most, < 2^15 / 2^22: no split in the horizontal pass, the
  // vertical pass's multiply-adds.
  for (int c : {3, 1}) {
    const Image src = noise_image(600, 2048, c, 7);
    CHECK(resize(src, 2, 8, Interp::bicubic).pixels == ref_resize(src, 2, 8, Interp::bicubic, ResizeMode::exact).pixels);
    const Image tall = noise_image(2048, 35, c, 8);
    CHECK(resize(tall, 8, 35, Interp::bilinear).pixels == ref_resize(tall, 8, 35, Interp::bilinear, ResizeMode::exact).pixels);
  }
}

TEST_CASE("resize fast: every byte within 1 grey level of Pillow's exact bytes (random sizes and scales)") {
  // Crops of 8..700 pixels each way to 1..300, i.e. scales from ~1/90 (many taps: the 8-bit
  // intermediate's path where the 16-bit one's bound fails) to ~40x up, both filters, RGB and
  // grey, noise images.
  std::mt19937 rng(1234);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int differ = 0;
  size_t bytes = 0, changed = 0;
  for (int i = 0; i < 300; ++i) {
    const int ih = pick(8, 700), iw = pick(8, 700);
    const bool small = i % 3 == 0;  // a third to small outputs (large shrinks), the rest near 224
    const int oh = small ? pick(1, 40) : pick(100, 300), ow = small ? pick(1, 40) : pick(100, 300);
    const int c = i % 4 == 3 ? 1 : 3;
    const Interp interp = i % 5 == 4 ? Interp::bilinear : Interp::bicubic;
    const Image src = noise_image(ih, iw, c, uint64_t(1000 + i));
    const Image fast = resize(src, oh, ow, interp, ResizeMode::fast);
    const Image exact = resize(src, oh, ow, interp, ResizeMode::exact);
    CAPTURE(ih);
    CAPTURE(iw);
    CAPTURE(oh);
    CAPTURE(ow);
    CAPTURE(c);
    const int d = max_abs_diff(fast, exact);
    REQUIRE(d <= 1);
    differ += d > 0;
    bytes += fast.pixels.size();
    for (size_t k = 0; k < fast.pixels.size(); ++k) changed += fast.pixels[k] != exact.pixels[k];
  }
  // Not the same arithmetic: some bytes do differ (else this test checks nothing).
  CHECK(differ > 0);
  MESSAGE("fast vs exact: " << differ << " of 300 resizes differ somewhere; " << changed << " of " << bytes
                            << " bytes differ by 1");
}

TEST_CASE("resize fast: RandomResizedCrop's sizes take the 16-bit intermediate, within 1 level, on noise and on stripes") {
  // Crops of 8..500 pixels each way (a 500 x 375 photo's RandomResizedCrop, down to timm's
  // scale 0.08 and ratio 3/4..4/3 and beyond) to 224 x 224 and to random outputs near it.
  // The inequality must hold for all of them (the fast path's speed is for these), and every
  // byte stays within 1 level of Pillow's exact bytes; a fifth is also checked bit for bit
  // against the plain loop (the rest: the same code paths, many more sizes).
  std::mt19937 rng(4321);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  size_t bytes = 0, changed = 0;
  for (int i = 0; i < 300; ++i) {
    const int ih = pick(8, 500), iw = pick(8, 500);
    const bool square = i % 2 == 0;
    const int oh = square ? 224 : pick(160, 288), ow = square ? 224 : pick(160, 288);
    if (ih == oh || iw == ow) continue;  // one axis only: the 16-bit intermediate is not used
    const int c = i % 8 == 7 ? 1 : 3;
    const Interp interp = i % 7 == 5 ? Interp::bilinear : Interp::bicubic;
    // Noise, or vertical / horizontal 0-255 stripes of random period: the sharpest edges, where
    // the negative lobes push the sums furthest outside 0..255 before the clip.
    const bool stripes = i % 3 == 1;
    Image src = stripes ? Image(ih, iw, c) : noise_image(ih, iw, c, uint64_t(5000 + i));
    if (stripes) {
      const int period = pick(1, 6);
      const bool vertical = i % 2 == 1;
      for (int y = 0; y < ih; ++y)
        for (int x = 0; x < iw; ++x)
          for (int ch = 0; ch < c; ++ch) src.at(y, x, ch) = ((vertical ? x : y) / period) % 2 ? 255 : 0;
    }
    CAPTURE(ih);
    CAPTURE(iw);
    CAPTURE(oh);
    CAPTURE(ow);
    CAPTURE(c);
    const Axis h = ref_axis(iw, ow, interp, ResizeMode::fast), v = ref_axis(ih, oh, interp, ResizeMode::fast, 15);
    REQUIRE(ref_mid16_applies(h, ref_axis(ih, oh, interp, ResizeMode::exact), v));
    const Image fast = resize(src, oh, ow, interp, ResizeMode::fast);
    const Image exact = resize(src, oh, ow, interp, ResizeMode::exact);
    REQUIRE(max_abs_diff(fast, exact) <= 1);
    if (i % 5 == 0) REQUIRE(fast.pixels == ref_resize(src, oh, ow, interp, ResizeMode::fast).pixels);
    bytes += fast.pixels.size();
    for (size_t k = 0; k < fast.pixels.size(); ++k) changed += fast.pixels[k] != exact.pixels[k];
  }
  CHECK(changed > 0);  // not Pillow's arithmetic: some bytes differ (by 1)
  MESSAGE("16-bit intermediate vs exact: " << changed << " of " << bytes << " bytes differ by 1");
}

TEST_CASE("resize mode: names, errors, and the train transform's option") {
  CHECK(resize_mode_from_name("exact") == ResizeMode::exact);
  CHECK(resize_mode_from_name("fast") == ResizeMode::fast);
  CHECK(std::string(resize_mode_name(ResizeMode::fast)) == "fast");
  CHECK_THROWS_WITH_AS(resize_mode_from_name("simd"), doctest::Contains("resize mode: expected \"exact\""), std::invalid_argument);
  CHECK(TrainTransformOptions{}.resize == ResizeMode::fast);  // the documented default
  if (!have_jpeg_decoder()) return;
  // The same draws through both modes: the same crop, tensors within 1 level (/ 255 / std).
  Image im(120, 160, 3);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      for (int c = 0; c < 3; ++c) im.at(y, x, c) = uint8_t((x * 7 + y * 3 + c * 50 + (x * y) % 13) & 255);
  const std::string jpg = encode_jpeg(im, 90);
  const auto* p = reinterpret_cast<const uint8_t*>(jpg.data());
  TrainTransformOptions fast, exact;
  fast.size = exact.size = 64;
  fast.color_jitter = exact.color_jitter = 0;  // the normalise only: a level is 1 / (255 * std)
  exact.resize = ResizeMode::exact;
  // The resize arithmetic alone: fast mode's M / 8 scaled decode is another resampling (its own
  // bound: tests/unit/test_jpeg_roi.cpp).
  fast.scaled_decode = exact.scaled_decode = false;
  int differ = 0;
  for (uint64_t s = 0; s < 8; ++s) {
    Generator g1(s), g2(s);
    RandomDraws r1(g1), r2(g2);
    const Tensor a = train_transform(p, jpg.size(), "x", fast, nullptr, r1);
    const Tensor b = train_transform(p, jpg.size(), "x", exact, nullptr, r2);
    float m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
    CHECK(m <= 1.0f / (255 * 0.224f) + 1e-5f);
    differ += m > 0;
  }
  CHECK(differ > 0);
}
