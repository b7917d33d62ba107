// The fast paths of the train chain against the plain ones they replace, bit for bit:
//   - resize (data/pil_resize.cpp, whose RGB horizontal pass is AVX2 16-bit multiply-adds on
//     split weights where the CPU has AVX2) against Pillow's fixed-point algorithm written as a
//     plain loop here, on odd sizes, up- and downscaling, both filters, RGB and grey;
//   - fused_color_apply + to_tensor_normalized_lut_into (data/fused_color.h) against hflip ->
//     color_jitter_apply / three_augment_apply -> to_tensor_normalized, for every 3-Augment op,
//     every jitter order, hue, grey inputs and flips;
//   - gaussian_blur against PIL's box blurs written plainly (odd shapes, 1-pixel lines, the
//     16-bit window sums up to their largest radius and the uint32 loop past it).
// Pillow's own pixels are checked in tests/fixtures/test_transforms.cpp.
#include <cmath>
#include <cstring>

#include "data/augment.h"
#include "data/fused_color.h"
#include "data/image_color.h"
#include "data/image_ops.h"
#include "tests/support/check.h"
#include "tests/support/noise_image.h"

using namespace rv;
using namespace rv::data;
using rv::test::noise_image;

namespace {

// A smooth image with some noise: the jitter ops see mid-range values and saturated ones.
Image photo_image(int h, int w, uint64_t seed) {
  Image im(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 128 + 110 * std::sin(0.05 * x * (c + 1) + 0.07 * y + double(seed)) +
                         double(philox_word(seed, 1, size_t(y * w + x) * 3 + c) & 15);
        im.at(y, x, c) = uint8_t(std::clamp(v, 0.0, 255.0));
      }
  return im;
}

// Pillow's resample (Resample.c) written plainly: 22-bit weights rounded half away from zero,
// horizontal pass to 8 bits, then vertical.
double kernel(double x, Interp interp) {
  x = std::fabs(x);
  if (interp == Interp::bilinear) return x < 1 ? 1 - x : 0;
  const double a = -0.5;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

void ref_weights(int in, int out, Interp interp, std::vector<int>& lo, std::vector<std::vector<int32_t>>& w) {
  const double scale = double(float(in)) / out, fs = std::max(scale, 1.0);
  const double support = (interp == Interp::bilinear ? 1.0 : 2.0) * fs;
  lo.assign(size_t(out), 0);
  w.assign(size_t(out), {});
  for (int i = 0; i < out; ++i) {
    const double c = (i + 0.5) * scale;
    const int a = std::max(int(c - support + 0.5), 0), b = std::min(int(c + support + 0.5), in);
    std::vector<double> k;
    double sum = 0;
    for (int j = a; j < b; ++j) k.push_back(kernel((j - c + 0.5) / fs, interp)), sum += k.back();
    lo[size_t(i)] = a;
    for (double v : k) {
      v = sum != 0 ? v / sum : v;
      w[size_t(i)].push_back(int32_t(v < 0 ? -0.5 + v * (1 << 22) : 0.5 + v * (1 << 22)));
    }
  }
}

uint8_t ref_clip(int64_t acc) {
  const int64_t v = acc >> 22;
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

Image ref_resize(const Image& src, int oh, int ow, Interp interp) {
  const int C = src.channels;
  Image mid = src;
  if (ow != src.width) {
    std::vector<int> lo;
    std::vector<std::vector<int32_t>> w;
    ref_weights(src.width, ow, interp, lo, w);
    mid = Image(src.height, ow, C);
    for (int y = 0; y < src.height; ++y)
      for (int x = 0; x < ow; ++x)
        for (int c = 0; c < C; ++c) {
          int64_t acc = 1 << 21;
          for (size_t k = 0; k < w[size_t(x)].size(); ++k) acc += int64_t(src.at(y, lo[size_t(x)] + int(k), c)) * w[size_t(x)][k];
          mid.at(y, x, c) = ref_clip(acc);
        }
  }
  if (oh == src.height) return mid;
  std::vector<int> lo;
  std::vector<std::vector<int32_t>> w;
  ref_weights(src.height, oh, interp, lo, w);
  Image out(oh, ow, C);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      for (int c = 0; c < C; ++c) {
        int64_t acc = 1 << 21;
        for (size_t k = 0; k < w[size_t(y)].size(); ++k) acc += int64_t(mid.at(lo[size_t(y)] + int(k), x, c)) * w[size_t(y)][k];
        out.at(y, x, c) = ref_clip(acc);
      }
  return out;
}

// PIL's GaussianBlur written plainly: 3 box blurs of fractional radius along each row (indices
// clamped), then 3 along each column, 24-bit fixed point (ImagingGaussianBlur / ImagingBoxBlur).
Image ref_blur(const Image& im, float radius) {
  const float sigma2 = radius * radius / 3.0f;
  const float L = float(std::sqrt(12.0 * sigma2 + 1.0));
  const float l = float(std::floor((L - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  const float r = l + a;
  if (r == 0.0f) return im;
  const int ri = int(r);
  const uint32_t ww = uint32_t(float(1 << 24) / (r * 2 + 1));
  const uint32_t fw = ((1u << 24) - uint32_t(ri * 2 + 1) * ww) / 2;
  Image x = im;
  auto line = [&](int n, auto get, auto set) {
    std::vector<uint32_t> v(size_t(n), 0);
    for (int i = 0; i < n; ++i) v[size_t(i)] = get(i);
    auto at = [&](int i) { return v[size_t(std::clamp(i, 0, n - 1))]; };
    for (int i = 0; i < n; ++i) {
      uint32_t sum = 0;
      for (int j = i - ri; j <= i + ri; ++j) sum += at(j);
      set(i, uint8_t((sum * ww + (at(i - ri - 1) + at(i + ri + 1)) * fw + (1u << 23)) >> 24));
    }
  };
  for (int p = 0; p < 3; ++p)
    for (int y = 0; y < x.height; ++y)
      for (int c = 0; c < x.channels; ++c)
        line(x.width, [&](int i) { return uint32_t(x.at(y, i, c)); }, [&](int i, uint8_t b) { x.at(y, i, c) = b; });
  for (int p = 0; p < 3; ++p)
    for (int xx = 0; xx < x.width; ++xx)
      for (int c = 0; c < x.channels; ++c)
        line(x.height, [&](int i) { return uint32_t(x.at(i, xx, c)); }, [&](int i, uint8_t b) { x.at(i, xx, c) = b; });
  return x;
}

// The op-by-op chain the fused one replaces, to (3, H, W).
Tensor plain_chain(const Image& im, bool flip, const ThreeAugmentParams* three, const ColorJitterParams* jitter) {
  Image x = flip ? hflip(im) : im;
  if (jitter) x = color_jitter_apply(x, *jitter);
  if (three) x = three_augment_apply(x, *three);
  if (x.channels == 1) x = grayscale3(x);
  return to_tensor_normalized(x, kImagenetMean, kImagenetStd);
}

Tensor fused_chain(const Image& im, bool flip, const ThreeAugmentParams* three, const ColorJitterParams* jitter) {
  Image x = im;
  ChannelLut lut;
  if (jitter) fused_color_apply(x, nullptr, jitter, lut);
  if (three) fused_color_apply(x, three, three->jitter ? &*three->jitter : nullptr, lut);
  Tensor out = empty({3, im.height, im.width}, DType::f32);
  to_tensor_normalized_lut_into(x, lut, flip, kImagenetMean, kImagenetStd, out);
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data<float>(), b.data<float>(), size_t(a.numel()) * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("resize: bit-exact with Pillow's fixed-point algorithm written plainly (the SIMD pass included)") {
  // Odd widths (the vector loads read past the row: edge pixels with fewer taps), both filters,
  // down by up to ~3x (more taps than one step of 4), up, one axis only, 1 pixel wide.
  const int shapes[][4] = {{37, 53, 19, 23}, {300, 401, 224, 224}, {229, 460, 224, 224}, {17, 9, 40, 31},
                           {5, 1, 7, 3},     {1, 7, 1, 2},         {64, 200, 64, 61},   {90, 33, 30, 33},
                           {45, 700, 20, 224}, {224, 225, 224, 224}};
  int n = 0;
  for (const auto& s : shapes)
    for (Interp interp : {Interp::bilinear, Interp::bicubic})
      for (int c : {3, 1}) {
        const Image src = noise_image(s[0], s[1], c, uint64_t(n++));
        const Image got = resize(src, s[2], s[3], interp);
        const Image want = ref_resize(src, s[2], s[3], interp);
        const int in_h = s[0], in_w = s[1], out_h = s[2], out_w = s[3];
        CAPTURE(in_h);
        CAPTURE(in_w);
        CAPTURE(out_h);
        CAPTURE(out_w);
        CAPTURE(c);
        REQUIRE(got.pixels == want.pixels);
      }
  // A crop view (a row stride larger than the width) takes the same path.
  const Image big = noise_image(80, 120, 3, 99);
  const Image a = resize(crop_view(big, 7, 13, 61, 97), 30, 41, Interp::bicubic);
  const Image b = ref_resize(crop(big, 7, 13, 61, 97), 30, 41, Interp::bicubic);
  CHECK(a.pixels == b.pixels);
  // resize_into reuses the output's buffer: larger, then smaller, then larger again, every axis
  // case (both passes, horizontal only, vertical only, a copy), and the same bytes as resize.
  Image reused;
  const int sizes[][2] = {{50, 70}, {12, 9}, {61, 97}, {61, 40}, {30, 97}, {61, 97}};
  for (const auto& sz : sizes) {
    resize_into(crop_view(big, 7, 13, 61, 97), sz[0], sz[1], Interp::bicubic, reused);
    CHECK(reused.height == sz[0]);
    CHECK(reused.width == sz[1]);
    CHECK(reused.pixels == ref_resize(crop(big, 7, 13, 61, 97), sz[0], sz[1], Interp::bicubic).pixels);
  }
  Image self = noise_image(20, 20, 3, 5);
  CHECK_THROWS_WITH_AS(resize_into(view_of(self), 10, 10, Interp::bilinear, self),
                       doctest::Contains("resize_into: the source is a view of the output image"), std::invalid_argument);
}

TEST_CASE("gaussian_blur (horizontal passes run on the transposed image): PIL's box blurs written plainly") {
  // The RGB transpose works in 8 x 8 pixel tiles (AVX2) with plain edge strips: whole tiles
  // only (8 x 8, 224 x 224, 16 x 24), tiles and both strips, strips only (< 8 each way).
  const int shapes[][3] = {{29, 41, 3}, {41, 29, 3}, {1, 17, 3}, {13, 1, 3}, {23, 31, 1}, {64, 7, 3},
                           {8, 8, 3},   {224, 224, 3}, {16, 24, 3}, {17, 9, 3}, {7, 5, 3}};
  int n = 0;
  for (const auto& sh : shapes)
    for (float radius : {0.3f, 1.234f, 2.0f, 4.5f}) {
      const Image im = noise_image(sh[0], sh[1], sh[2], uint64_t(100 + n++));
      CAPTURE(radius);
      CAPTURE(n);
      CHECK(gaussian_blur(im, radius).pixels == ref_blur(im, radius).pixels);
    }
  // The 16-bit window sums (AVX2) hold up to 255 * (2 ri + 1) <= 32767, ri <= 63; larger box
  // radii take the uint32 loop. All-255 images give the largest sums at ri = 63 (radius ~63.5).
  for (float radius : {40.0f, 63.0f, 63.6f, 70.0f}) {
    Image white(150, 23, 3);
    std::fill(white.pixels.begin(), white.pixels.end(), uint8_t(255));
    const Image im = noise_image(140, 21, 3, uint64_t(radius * 10));
    CAPTURE(radius);
    CHECK(gaussian_blur(white, radius).pixels == ref_blur(white, radius).pixels);
    CHECK(gaussian_blur(im, radius).pixels == ref_blur(im, radius).pixels);
  }
}

TEST_CASE("fused colour chain: the same floats as hflip -> jitter / 3-Augment -> normalise, every op and order") {
  const Image rgb = photo_image(37, 45, 1);
  const Image grey_in = rgb_to_grey(photo_image(23, 31, 2));
  Generator gen(7);
  RandomDraws rd(gen);
  int cases = 0;
  for (int trial = 0; trial < 60; ++trial) {
    ThreeAugmentParams three = three_augment_params(0.4f, rd);
    three.op = ThreeAugmentOp(trial % 3);  // each op 20 times, random jitter orders and factors
    if (three.op == ThreeAugmentOp::gaussian_blur) three.blur_radius = float(0.1 + 0.03 * trial);
    const bool flip = trial % 2 == 1;
    CAPTURE(trial);
    CHECK(same_bits(fused_chain(rgb, flip, &three, nullptr), plain_chain(rgb, flip, &three, nullptr)));
    // timm without --aa: jitter alone, with hue too (the 4th op), and factors outside [0, 1].
    const ColorJitterParams cj = color_jitter_params({0.9f, 0.9f, 1.5f, 0.3f}, rd);
    CHECK(same_bits(fused_chain(rgb, flip, nullptr, &cj), plain_chain(rgb, flip, nullptr, &cj)));
    // A grey input (1 channel): grayscale3 on it, then the jitter on equal channels.
    CHECK(same_bits(fused_chain(grey_in, flip, &three, nullptr), plain_chain(grey_in, flip, &three, nullptr)));
    cases += 3;
  }
  // No jitter at all: the 3-Augment op alone; nothing at all: flip + normalise.
  for (int op = 0; op < 3; ++op) {
    ThreeAugmentParams three;
    three.op = ThreeAugmentOp(op);
    three.blur_radius = 1.3f;
    CHECK(same_bits(fused_chain(rgb, true, &three, nullptr), plain_chain(rgb, true, &three, nullptr)));
  }
  CHECK(same_bits(fused_chain(rgb, false, nullptr, nullptr), plain_chain(rgb, false, nullptr, nullptr)));
  CHECK(same_bits(fused_chain(rgb, true, nullptr, nullptr), plain_chain(rgb, true, nullptr, nullptr)));
  CHECK(cases == 180);
}

TEST_CASE("ChannelLut: identity, composition; fused errors name the op") {
  ChannelLut lut;
  CHECK(lut.identity);
  for (int v = 0; v < 256; ++v) CHECK(lut.map[1][size_t(v)] == v);
  lut.then([](int c, uint8_t v) { return uint8_t(v / 2 + c); });
  lut.then([](int, uint8_t v) { return uint8_t(255 - v); });
  CHECK_FALSE(lut.identity);
  CHECK(lut.map[0][200] == 155);
  CHECK(lut.map[2][201] == 153);
  lut.reset();
  CHECK(lut.identity);
  CHECK(lut.map[2][201] == 201);

  Image im(4, 5, 3);
  Tensor wrong = empty({3, 5, 4}, DType::f32);
  CHECK_THROWS_WITH_AS(to_tensor_normalized_lut_into(im, lut, false, kImagenetMean, kImagenetStd, wrong),
                       doctest::Contains("to_tensor_normalized_lut_into: out must be a contiguous float32 [3, 4, 5]"),
                       std::invalid_argument);
  Tensor f64 = empty({3, 4, 5}, DType::f64);
  CHECK_THROWS_WITH_AS(to_tensor_normalized_lut_into(im, lut, false, kImagenetMean, kImagenetStd, f64),
                       doctest::Contains("got float64"), std::invalid_argument);
  // An empty image: nothing to write, no error.
  Image empty_im(0, 0, 3);
  ColorJitterParams cj;
  cj.contrast = 1.2f;
  ChannelLut l2;
  fused_color_apply(empty_im, nullptr, &cj, l2);
  Tensor e = empty({3, 0, 0}, DType::f32);
  to_tensor_normalized_lut_into(empty_im, l2, true, kImagenetMean, kImagenetStd, e);
  CHECK(e.numel() == 0);
}
