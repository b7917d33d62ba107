// fused_color.cpp: 3-Augment + ColorJitter + flip + normalise in few passes (see fused_color.h).
#include "data/fused_color.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "data/image_color.h"
#include "data/image_ops.h"

namespace rv::data {

void ChannelLut::reset() {
  for (auto& m : map)
    for (int v = 0; v < 256; ++v) m[size_t(v)] = uint8_t(v);
  identity = true;
}

namespace {

// The rounded mean of the luma of lut(im), as adjust_contrast's degenerate grey: int(mean + 0.5).
// A grey image's luma is its value: (v * 65536 + 0x8000) >> 16 = v.
uint8_t mapped_grey_mean(const Image& im, const ChannelLut& lut) {
  const size_t n = size_t(im.height) * im.width;
  if (n == 0) return 0;
  uint64_t sum = 0;
  const uint8_t* s = im.pixels.data();
  if (im.channels == 1) {
    // A histogram, then 256 lookups: no per-pixel table read in the hot loop.
    uint32_t hist[256] = {};
    for (size_t i = 0; i < n; ++i) ++hist[s[i]];
    for (int v = 0; v < 256; ++v) sum += uint64_t(hist[v]) * lut.map[0][size_t(v)];
  } else if (lut.identity) {
    for (size_t i = 0; i < n; ++i) sum += pil_luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
  } else {
    const uint8_t *m0 = lut.map[0].data(), *m1 = lut.map[1].data(), *m2 = lut.map[2].data();
    for (size_t i = 0; i < n; ++i) sum += pil_luma(m0[s[3 * i]], m1[s[3 * i + 1]], m2[s[3 * i + 2]]);
  }
  return uint8_t(int(double(sum) / double(n) + 0.5));
}

// The pending map written into the pixels (a grey image's single channel uses map 0: its
// maps are equal, every op so far having been the same on each channel).
void materialize(Image& im, ChannelLut& lut) {
  if (lut.identity) return;
  uint8_t* s = im.pixels.data();
  const uint8_t *m0 = lut.map[0].data(), *m1 = lut.map[1].data(), *m2 = lut.map[2].data();
  if (im.channels == 1) {
    for (size_t i = 0, n = im.pixels.size(); i < n; ++i) s[i] = m0[s[i]];
  } else {
    for (size_t i = 0, n = size_t(im.height) * im.width; i < n; ++i) {
      uint8_t* p = s + 3 * i;
      p[0] = m0[p[0]], p[1] = m1[p[1]], p[2] = m2[p[2]];
    }
  }
  lut.reset();
}

// adjust_saturation of lut(im) (RGB), written into im: blend(grey(p), p, f) per pixel. The map
// is applied first, by its own pass: the blend loop without table reads vectorises (strided
// loads of R, G, B, float blends), which more than pays for the extra pass.
void saturation_pass(Image& im, ChannelLut& lut, float f) {
  materialize(im, lut);
  const int n = im.height * im.width;
  uint8_t* __restrict s = im.pixels.data();
  for (int i = 0; i < n; ++i) {
    const uint8_t r = s[3 * i], g = s[3 * i + 1], b = s[3 * i + 2];
    const int l = pil_luma(r, g, b);
    s[3 * i] = blend_byte(l, r, f);
    s[3 * i + 1] = blend_byte(l, g, f);
    s[3 * i + 2] = blend_byte(l, b, f);
  }
}

}  // namespace

void fused_color_apply(Image& im, const ThreeAugmentParams* three, const ColorJitterParams* jitter, ChannelLut& lut) {
  if (im.channels != 1 && im.channels != 3)
    throw std::invalid_argument("fused_color_apply: expected 1 or 3 channels, got " + std::to_string(im.channels));
  if (three) {
    switch (three->op) {
      case ThreeAugmentOp::grayscale:
        materialize(im, lut);
        if (im.channels == 3) im = rgb_to_grey(im);  // kept as one channel: grayscale3 copies it thrice
        break;
      case ThreeAugmentOp::solarize:
        lut.then([](int, uint8_t v) { return uint8_t(v >= 128 ? 255 - v : v); });
        break;
      case ThreeAugmentOp::gaussian_blur:
        materialize(im, lut);
        im = gaussian_blur(im, three->blur_radius);
        break;
    }
  }
  if (!jitter) return;
  for (int fn : jitter->order) {
    if (fn == 0 && jitter->brightness) {
      const float f = *jitter->brightness;
      lut.then([f](int, uint8_t v) { return blend_byte(0, v, f); });
    } else if (fn == 1 && jitter->contrast) {
      const float f = *jitter->contrast;
      const uint8_t m = mapped_grey_mean(im, lut);
      lut.then([f, m](int, uint8_t v) { return blend_byte(m, v, f); });
    } else if (fn == 2 && jitter->saturation) {
      // A grey image is its own grey: blend(im, im, f) = im exactly (a + f * 0).
      if (im.channels == 3) saturation_pass(im, lut, *jitter->saturation);
    } else if (fn == 3 && jitter->hue) {
      materialize(im, lut);
      im = adjust_hue(im, *jitter->hue);  // grey images come back unchanged, as torchvision
    }
  }
}

void to_tensor_normalized_lut_into(const Image& im, const ChannelLut& lut, bool flip, const std::array<float, 3>& mean,
                                   const std::array<float, 3>& stdev, const Tensor& out) {
  const int C = im.channels, H = im.height, W = im.width;
  if (C != 1 && C != 3)
    throw std::invalid_argument("to_tensor_normalized_lut_into: expected 1 or 3 channels, got " + std::to_string(C));
  if (!out.defined() || out.dtype() != DType::f32 || !out.is_contiguous() || out.shape() != Shape{3, H, W})
    throw std::invalid_argument("to_tensor_normalized_lut_into: out must be a contiguous float32 " +
                                shape_str(Shape{3, H, W}) + ", got " +
                                (out.defined() ? std::string(dtype_name(out.dtype())) + " " + shape_str(out.shape()) +
                                                     (out.is_contiguous() ? "" : " (non-contiguous)")
                                               : std::string("an undefined tensor")));
  // The float value of each byte of each channel: the normalise of the mapped byte, computed
  // as to_tensor_normalized does ((v / 255 - mean) / std in f32, the same two roundings).
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c][v] = (float(lut.map[size_t(c)][size_t(v)]) / 255.0f - mean[size_t(c)]) / stdev[size_t(c)];
  float* d = out.data<float>();
  const size_t plane = size_t(H) * W;
  float *d0 = d, *d1 = d + plane, *d2 = d + 2 * plane;
  const float *t0 = table[0], *t1 = table[1], *t2 = table[2];
  for (int y = 0; y < H; ++y) {
    const uint8_t* s = im.row(y);
    const size_t o = size_t(y) * W;
    // Output column x reads source column sx(x): W - 1 - x when flipped.
    if (C == 3) {
      if (flip) {
        for (int x = 0; x < W; ++x) {
          const uint8_t* p = s + size_t(W - 1 - x) * 3;
          d0[o + x] = t0[p[0]], d1[o + x] = t1[p[1]], d2[o + x] = t2[p[2]];
        }
      } else {
        for (int x = 0; x < W; ++x) {
          const uint8_t* p = s + size_t(x) * 3;
          d0[o + x] = t0[p[0]], d1[o + x] = t1[p[1]], d2[o + x] = t2[p[2]];
        }
      }
    } else {
      for (int x = 0; x < W; ++x) {
        const uint8_t v = s[flip ? W - 1 - x : x];
        d0[o + x] = t0[v], d1[o + x] = t1[v], d2[o + x] = t2[v];
      }
    }
  }
}

}  // namespace rv::data
