// image_ops.cpp: PIL-exact uint8 image operations (see image_ops.h for the reference of each).
#include "data/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "data/image_color.h"

namespace rv::data {

Image crop(const Image& im, int top, int left, int height, int width) {
  const ImageView v = crop_view(im, top, left, height, width);
  Image out(height, width, im.channels);
  for (int y = 0; y < height; ++y) std::memcpy(out.row(y), v.row(y), size_t(width) * im.channels);
  return out;
}

Image center_crop(const Image& im, int height, int width) {
  if (height > im.height || width > im.width)
    throw std::invalid_argument("center_crop: crop " + std::to_string(height) + "x" + std::to_string(width) +
                                " is larger than the " + std::to_string(im.height) + "x" + std::to_string(im.width) + " image");
  // torchvision: int(round((H - h) / 2.0)); Python rounds half to even, as nearbyint does.
  const int top = int(std::nearbyint((im.height - height) / 2.0));
  const int left = int(std::nearbyint((im.width - width) / 2.0));
  return crop(im, top, left, height, width);
}

Image hflip(const Image& im) {
  Image out(im.height, im.width, im.channels);
  const int C = im.channels, W = im.width;
  for (int y = 0; y < im.height; ++y) {
    const uint8_t* s = im.row(y);
    uint8_t* d = out.row(y);
    for (int x = 0; x < W; ++x)
      for (int c = 0; c < C; ++c) d[x * C + c] = s[(W - 1 - x) * C + c];
  }
  return out;
}

Image resize_short_side(const Image& im, int size, Interp interp) {
  if (size < 1) throw std::invalid_argument("resize_short_side: size must be >= 1, got " + std::to_string(size));
  const bool wide = im.width >= im.height;
  const int s = wide ? im.height : im.width, l = wide ? im.width : im.height;
  const int new_long = int(int64_t(size) * l / s);  // torchvision: int(size * long / short)
  const int oh = wide ? size : new_long, ow = wide ? new_long : size;
  if (oh == im.height && ow == im.width) return im;
  return resize(im, oh, ow, interp);
}

Image grayscale3(const Image& im) {
  if (im.channels == 1) return grey_to_rgb(im);
  return grey_to_rgb(rgb_to_grey(im));
}

Image solarize(const Image& im, int threshold) {
  Image out = im;
  for (uint8_t& v : out.pixels)
    if (v >= threshold) v = uint8_t(255 - v);
  return out;
}

namespace {

// blend of a constant per-channel degenerate image with `im`.
Image blend_const(const std::array<uint8_t, 3>& a, const Image& im, float alpha) {
  Image out(im.height, im.width, im.channels);
  const int C = im.channels;
  const size_t n = size_t(im.height) * im.width;
  const uint8_t* s = im.pixels.data();
  uint8_t* d = out.pixels.data();
  if (C == 1) {
    for (size_t i = 0; i < n; ++i) d[i] = blend_byte(a[0], s[i], alpha);
  } else {
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) d[3 * i + c] = blend_byte(a[c], s[3 * i + c], alpha);
  }
  return out;
}

}  // namespace

Image blend(const Image& a, const Image& b, float alpha) {
  if (a.height != b.height || a.width != b.width || a.channels != b.channels)
    throw std::invalid_argument("blend: images differ in size or channels");
  Image out(a.height, a.width, a.channels);
  const uint8_t *pa = a.pixels.data(), *pb = b.pixels.data();
  uint8_t* d = out.pixels.data();
  for (size_t i = 0, n = a.pixels.size(); i < n; ++i) d[i] = blend_byte(pa[i], pb[i], alpha);
  return out;
}

Image adjust_brightness(const Image& im, float factor) { return blend_const({0, 0, 0}, im, factor); }

Image adjust_contrast(const Image& im, float factor) {
  // The degenerate image is the mean of the grey image, rounded: int(mean + 0.5).
  const Image grey = im.channels == 3 ? rgb_to_grey(im) : im;
  uint64_t sum = 0;
  for (uint8_t v : grey.pixels) sum += v;
  const double mean = grey.pixels.empty() ? 0.0 : double(sum) / double(grey.pixels.size());
  const uint8_t m = uint8_t(int(mean + 0.5));
  return blend_const({m, m, m}, im, factor);
}

Image adjust_saturation(const Image& im, float factor) {
  if (im.channels == 1) return blend(im, im, factor);
  return blend(grayscale3(im), im, factor);
}

namespace {

// PIL's RGB -> HSV of one pixel (Convert.c's colorsys-style float code, with its float /
// double mix kept: the bytes depend on it).
inline void rgb_to_hsv(const uint8_t* in, uint8_t* out) {
  const uint8_t r = in[0], g = in[1], b = in[2];
  const uint8_t maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  uint8_t uh = 0, us = 0;
  if (minc != maxc) {
    const float cr = float(maxc - minc);
    const float s = cr / float(maxc);
    const float rc = float(maxc - r) / cr, gc = float(maxc - g) / cr, bc = float(maxc - b) / cr;
    float h;
    if (r == maxc) h = bc - gc;
    else if (g == maxc) h = float(2.0 + rc - bc);
    else h = float(4.0 + gc - rc);
    h = float(std::fmod(h / 6.0 + 1.0, 1.0));
    uh = uint8_t(std::clamp(int(h * 255.0), 0, 255));
    us = uint8_t(std::clamp(int(s * 255.0), 0, 255));
  }
  out[0] = uh, out[1] = us, out[2] = maxc;
}

inline void hsv_to_rgb(uint8_t h, uint8_t s, uint8_t v, uint8_t* out) {
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const int i = int(std::floor(float(h) * 6.0 / 255.0));
  const float f = float(float(h) * 6.0 / 255.0 - float(i));
  const float fs = float(float(s) / 255.0);
  auto clip = [](double x) { return uint8_t(std::clamp(int(std::round(x)), 0, 255)); };
  const uint8_t p = clip(float(v) * (1.0 - fs)), q = clip(float(v) * (1.0 - fs * f)), t = clip(float(v) * (1.0 - fs * (1.0 - f)));
  switch (i % 6) {
    case 0: out[0] = v, out[1] = t, out[2] = p; break;
    case 1: out[0] = q, out[1] = v, out[2] = p; break;
    case 2: out[0] = p, out[1] = v, out[2] = t; break;
    case 3: out[0] = p, out[1] = q, out[2] = v; break;
    case 4: out[0] = t, out[1] = p, out[2] = v; break;
    default: out[0] = v, out[1] = p, out[2] = q; break;
  }
}

}  // namespace

Image adjust_hue(const Image& im, float hue_factor) {
  if (!(hue_factor >= -0.5f && hue_factor <= 0.5f))
    throw std::invalid_argument("adjust_hue: hue_factor must be in [-0.5, 0.5], got " + std::to_string(hue_factor));
  if (im.channels == 1) return im;  // torchvision returns grey images unchanged
  // torchvision: np.int32(hue_factor * 255) (toward zero), added to the uint8 hue with wrap-around.
  const uint8_t shift = uint8_t(int32_t(double(hue_factor) * 255));
  Image out(im.height, im.width, 3);
  const size_t n = size_t(im.height) * im.width;
  for (size_t i = 0; i < n; ++i) {
    uint8_t hsv[3];
    rgb_to_hsv(&im.pixels[3 * i], hsv);
    hsv_to_rgb(uint8_t(hsv[0] + shift), hsv[1], hsv[2], &out.pixels[3 * i]);
  }
  return out;
}

namespace {

// PIL's box radius for one of `passes` box blurs that together approximate a Gaussian of the
// given radius (Gwosdek et al., "Theoretical foundations of Gaussian convolution by extended
// box filtering"): an integer part l and a fractional extension a, in float as PIL computes.
float box_radius(float radius, int passes) {
  const float sigma2 = radius * radius / float(passes);
  const float L = float(std::sqrt(12.0 * sigma2 + 1.0));
  const float l = float(std::floor((L - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

// The image with its axes swapped: out(x, y, c) = in(y, x, c). The blur runs its horizontal
// passes as vertical ones on the transposed image (see box_blur_cols), in tiles so that both
// sides stay in cache.
template <int C>
void transpose_tiles(const uint8_t* __restrict in, uint8_t* __restrict out, int H, int W) {
  constexpr int T = 16;
  for (int y0 = 0; y0 < H; y0 += T)
    for (int x0 = 0; x0 < W; x0 += T) {
      const int y1 = std::min(H, y0 + T), x1 = std::min(W, x0 + T);
      for (int x = x0; x < x1; ++x) {
        uint8_t* d = out + size_t(x) * H * C;
        for (int y = y0; y < y1; ++y) {
          const uint8_t* s = in + (size_t(y) * W + x) * C;
          for (int c = 0; c < C; ++c) d[size_t(y) * C + c] = s[c];
        }
      }
    }
}

#if defined(__AVX2__)
// The RGB transpose in 8 x 8 pixel tiles with AVX2: each row's 8 pixels (24 bytes) widened to
// 8 dwords (R G B 0), the 8 x 8 dword matrix transposed in registers (unpack 32, unpack 64,
// swap 128-bit halves: the textbook 3-stage network), each column narrowed back to 24 bytes.
// A pure byte permutation, so it is the scalar loop's result bit for bit; the edge strips that
// do not fill a tile take the scalar loop. About 80 instructions per 64 pixels instead of 192
// byte moves.
void transpose_rgb_avx2(const uint8_t* __restrict in, uint8_t* __restrict out, int H, int W) {
  // Row bytes 0..15 go to the low half, bytes 8..23 to the high half (both loads stay inside
  // the 24 bytes); pshufb then spreads pixels 0-3 (low) and 4-7 (high: at bytes 4, 7, 10, 13)
  // into dwords.
  const __m256i widen = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,  //
                                         4, 5, 6, -1, 7, 8, 9, -1, 10, 11, 12, -1, 13, 14, 15, -1);
  // Back: 3 bytes of each dword packed to the front of its half, then dwords 0-2 and 4-6 joined.
  const __m256i narrow = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,  //
                                          0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  const int H8 = H / 8 * 8, W8 = W / 8 * 8;
  for (int y0 = 0; y0 < H8; y0 += 8)
    for (int x0 = 0; x0 < W8; x0 += 8) {
      __m256i r[8], t[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* s = in + (size_t(y0 + i) * W + x0) * 3;
        const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))),
                                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 8)), 1);
        r[i] = _mm256_shuffle_epi8(b, widen);  // pixels (y0 + i, x0 .. x0 + 7)
      }
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
      }
      for (int i = 0; i < 4; ++i) {
        t[i] = _mm256_permute2x128_si256(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2x128_si256(r[i], r[i + 4], 0x31);
      }
      for (int i = 0; i < 8; ++i) {  // t[i]: pixels (y0 .. y0 + 7, x0 + i)
        const __m256i c = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(t[i], narrow), join);
        uint8_t* d = out + (size_t(x0 + i) * H + y0) * 3;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(c));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), _mm256_extracti128_si256(c, 1));
      }
    }
  // The right strip (x >= W8, every row) and the bottom strip (y >= H8, x < W8), plainly.
  for (int y = 0; y < H; ++y)
    for (int x = y < H8 ? W8 : 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) out[(size_t(x) * H + y) * 3 + c] = in[(size_t(y) * W + x) * 3 + c];
}
#endif

void transpose_hw(const Image& in, Image& out) {
  out.height = in.width, out.width = in.height, out.channels = in.channels;
  out.pixels.resize(in.pixels.size());
#if defined(__AVX2__)
  if (in.channels == 3) return transpose_rgb_avx2(in.pixels.data(), out.pixels.data(), in.height, in.width);
#endif
  if (in.channels == 3) transpose_tiles<3>(in.pixels.data(), out.pixels.data(), in.height, in.width);
  else transpose_tiles<1>(in.pixels.data(), out.pixels.data(), in.height, in.width);
}

// One box blur of fractional radius r = ri + frac down each column of an H x W x C image, every
// channel at once: out[y] = (sum of in[y-ri .. y+ri]) * ww + (in[y-ri-1] + in[y+ri+1]) * fw in
// 24-bit fixed point, indices clamped to the image (edge rows repeat), as PIL's
// ImagingLineBoxBlur along a line. Whole rows at a time, so that the inner loops run over the
// W * C contiguous bytes of a row (vectorised) instead of striding down one column at a time.
// Exact integer sums: the order of the additions does not change a bit.
#if defined(__AVX2__)
// The same pass with 16-bit window sums, 16 columns per step. Bit for bit the uint32 loop:
//   - the window sum a <= 255 * (2 ri + 1) fits an int16 for ri <= 63 (3-Augment's radii give
//     ri <= 1; the caller takes the uint32 loop otherwise), and the edge term e = lo + next <= 510;
//   - a * ww + e * fw is formed exactly from two 16-bit multiply-adds (vpmaddwd on the pairs
//     (a, e)) with the weights split as ww = 1024 * wh + wl, fw = 1024 * fh + fl (wl, fl < 1024;
//     ww <= 2^24 so wh <= 2^14, fw <= 2^23 so fh <= 2^13: all int16):
//       a * ww + e * fw = 1024 * (a * wh + e * fh) + (a * wl + e * fl),
//     the first madd < 2^15 * 2^14 + 510 * 2^13 < 2^30, the second < 2^26: no int32 overflow;
//   - the whole sum is <= 255 * ((2 ri + 1) * ww + 2 fw) <= 255 * 2^24 < 2^32, so the int32
//     lanes (wrapping mod 2^32) hold the uint32 loop's value, and a logical shift by 24 after
//     adding 2^23 gives its byte.
// The gain: the window update on 16 lanes instead of 8, and two single-uop multiply-adds per
// 8 outputs instead of two two-uop 32-bit multiplies and an add.
void box_blur_cols16(const Image& in, Image& out, int ri, uint32_t ww, uint32_t fw, std::vector<uint16_t>& acc) {
  const int H = in.height, n = in.width * in.channels;
  auto row = [&](int y) { return in.row(std::clamp(y, 0, H - 1)); };
  acc.assign(size_t(n), 0);
  uint16_t* a = acc.data();
  for (int j = -ri - 1; j < ri; ++j) {
    const uint8_t* r = row(j);
    for (int i = 0; i < n; ++i) a[i] = uint16_t(a[i] + r[i]);  // window of y = -1
  }
  auto pair = [](uint32_t lo16, uint32_t hi16) { return _mm256_set1_epi32(int32_t(lo16 | hi16 << 16)); };
  const __m256i wh = pair(ww >> 10, fw >> 10), wl = pair(ww & 1023, fw & 1023);
  const __m256i round = _mm256_set1_epi32(1 << 23);
  for (int y = 0; y < H; ++y) {
    const uint8_t *lo = row(y - ri - 1), *hi = row(y + ri), *next = row(y + ri + 1);
    uint8_t* o = out.row(y);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      auto load16 = [&](const uint8_t* p) { return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))); };
      const __m256i l = load16(lo), h = load16(hi), nx = load16(next);
      __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
      s = _mm256_sub_epi16(_mm256_add_epi16(s, h), l);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + i), s);
      const __m256i e = _mm256_add_epi16(l, nx);
      // Per 128-bit lane: unpacklo holds columns 0-3 (8-11), unpackhi 4-7 (12-15).
      auto bytes = [&](__m256i p) {
        const __m256i bulk = _mm256_add_epi32(_mm256_slli_epi32(_mm256_madd_epi16(p, wh), 10), _mm256_madd_epi16(p, wl));
        return _mm256_srli_epi32(_mm256_add_epi32(bulk, round), 24);
      };
      const __m256i r0 = bytes(_mm256_unpacklo_epi16(s, e)), r1 = bytes(_mm256_unpackhi_epi16(s, e));
      const __m256i w16 = _mm256_packs_epi32(r0, r1);  // columns 0-7 | 8-15, in order
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i),
                       _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
    }
    for (; i < n; ++i) {
      a[i] = uint16_t(a[i] + hi[i] - lo[i]);
      const uint32_t bulk = uint32_t(a[i]) * ww + (uint32_t(lo[i]) + uint32_t(next[i])) * fw;
      o[i] = uint8_t((bulk + (1u << 23)) >> 24);
    }
  }
}
#endif

void box_blur_cols(const Image& in, Image& out, int ri, uint32_t ww, uint32_t fw, std::vector<uint32_t>& acc) {
#if defined(__AVX2__)
  if (ri <= 63) {
    thread_local std::vector<uint16_t> acc16;
    box_blur_cols16(in, out, ri, ww, fw, acc16);
    return;
  }
#endif
  const int H = in.height, n = in.width * in.channels;
  auto row = [&](int y) { return in.row(std::clamp(y, 0, H - 1)); };
  acc.assign(size_t(n), 0);
  uint32_t* a = acc.data();
  for (int j = -ri - 1; j < ri; ++j) {
    const uint8_t* r = row(j);
    for (int i = 0; i < n; ++i) a[i] += r[i];  // window of y = -1
  }
  for (int y = 0; y < H; ++y) {
    const uint8_t *lo = row(y - ri - 1), *hi = row(y + ri), *next = row(y + ri + 1);
    uint8_t* o = out.row(y);
    for (int i = 0; i < n; ++i) {
      a[i] += uint32_t(hi[i]) - uint32_t(lo[i]);
      const uint32_t bulk = a[i] * ww + (uint32_t(lo[i]) + uint32_t(next[i])) * fw;
      o[i] = uint8_t((bulk + (1u << 23)) >> 24);
    }
  }
}

}  // namespace

Image gaussian_blur(const Image& im, float radius) {
  if (!(radius >= 0.0f)) throw std::invalid_argument("gaussian_blur: radius must be >= 0, got " + std::to_string(radius));
  constexpr int passes = 3;
  const float r = box_radius(radius, passes);
  if (r == 0.0f || im.empty()) return im;
  const int ri = int(r);
  const uint32_t ww = uint32_t(float(1 << 24) / (r * 2 + 1));
  const uint32_t fw = ((1u << 24) - uint32_t(ri * 2 + 1) * ww) / 2;
  const int H = im.height, W = im.width, C = im.channels;
  // All horizontal passes, then all vertical ones (as PIL). The horizontal ones are column
  // passes on the transposed image: the same sums, but vectorised along rows (a sliding window
  // along an interleaved row is a serial chain).
  Image a, b(W, H, C);
  transpose_hw(im, a);
  std::vector<uint32_t> scratch;
  for (int p = 0; p < passes; ++p) {
    box_blur_cols(a, b, ri, ww, fw, scratch);
    std::swap(a, b);
  }
  transpose_hw(a, b);
  std::swap(a, b);
  b.height = H, b.width = W;  // the same pixel count: now the vertical passes' H x W scratch
  for (int p = 0; p < passes; ++p) {
    box_blur_cols(a, b, ri, ww, fw, scratch);
    std::swap(a, b);
  }
  return a;
}

void to_tensor_normalized_into(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev,
                               const Tensor& out) {
  const int C = im.channels, H = im.height, W = im.width;
  if (!out.defined() || out.dtype() != DType::f32 || !out.is_contiguous() || out.shape() != Shape{C, H, W})
    throw std::invalid_argument("to_tensor_normalized_into: out must be a contiguous float32 " +
                                shape_str(Shape{C, H, W}) + " (the image's C, H, W), got " +
                                (out.defined() ? std::string(dtype_name(out.dtype())) + " " + shape_str(out.shape()) +
                                                     (out.is_contiguous() ? "" : " (non-contiguous)")
                                               : std::string("an undefined tensor")));
  float* d = out.data<float>();
  for (int c = 0; c < C; ++c) {
    // ToTensor divides by 255 in f32, Normalize subtracts and divides in f32: the same two roundings.
    const float m = mean[c], s = stdev[c];
    float* dc = d + size_t(c) * H * W;
    const uint8_t* src = im.pixels.data() + c;
    for (size_t i = 0, n = size_t(H) * W; i < n; ++i) dc[i] = (float(src[i * C]) / 255.0f - m) / s;
  }
}

Tensor to_tensor_normalized(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev) {
  Tensor t = empty({im.channels, im.height, im.width}, DType::f32);
  to_tensor_normalized_into(im, mean, stdev, t);
  return t;
}

}  // namespace rv::data
