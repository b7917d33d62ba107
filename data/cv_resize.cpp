// cv_resize.cpp: OpenCV-exact resizes of uint8 images: fixed-point bilinear, nearest (see cv_resize.h).
#include "data/cv_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rv::data {

namespace {

constexpr int kCoefBits = 11;               // OpenCV's INTER_RESIZE_COEF_BITS
constexpr int kCoefScale = 1 << kCoefBits;  // 2048: a weight of 1

// OpenCV's saturate_cast<short>(float): round half to even (lrint), clamped.
int16_t round_coef(float w) {
  const long r = std::lrint(w);
  return int16_t(std::clamp<long>(r, INT16_MIN, INT16_MAX));
}

// One axis: for each output index, the first source index and the two 11-bit weights.
struct CvTaps {
  std::vector<int> src;           // first source index (may be -1 on y; rows are clipped when read)
  std::vector<int16_t> w0, w1;
};

// clamp_edges: the x axis (OpenCV clamps the position, so an overhang weighs the edge pixel 1);
// the y axis keeps the weights and clips the row indices instead (the same value in exact
// arithmetic, not always after the SIMD pass's rounding, so kept as OpenCV has it).
CvTaps make_cv_taps(int in, int out, bool clamp_edges) {
  CvTaps t;
  t.src.resize(size_t(out));
  t.w0.resize(size_t(out));
  t.w1.resize(size_t(out));
  // OpenCV computes the inverse of the inverse scale, not in / out directly: the same double.
  const double inv_scale = double(out) / double(in);
  const double scale = 1.0 / inv_scale;  // the same double OpenCV uses
  for (int d = 0; d < out; ++d) {
    float f = float((d + 0.5) * scale - 0.5);
    int s = int(std::floor(f));
    f -= float(s);
    if (clamp_edges) {
      if (s < 0) f = 0, s = 0;             // left overhang: the edge pixel alone
      if (s >= in - 1) f = 0, s = in - 1;  // right overhang likewise
    }
    t.src[size_t(d)] = s;
    t.w0[size_t(d)] = round_coef((1.f - f) * float(kCoefScale));
    t.w1[size_t(d)] = round_coef(f * float(kCoefScale));
  }
  return t;
}

// The horizontal pass of one source row: out_w * C sums value * weight (scale 2048). C is a
// template argument so that the per-pixel channel loop unrolls (1 and 3 are the cases).
template <int C>
void horizontal(const uint8_t* row, int W, const CvTaps& tx, int32_t* out) {
  const int ow = int(tx.src.size());
  const int* src = tx.src.data();
  const int16_t *w0 = tx.w0.data(), *w1 = tx.w1.data();
  for (int dx = 0; dx < ow; ++dx) {
    const int s = src[dx];
    const uint8_t* p = row + size_t(s) * C;
    int32_t* o = out + size_t(dx) * C;
    if (s + 1 >= W) {  // OpenCV's xmax: the last column alone, weight 1
      for (int c = 0; c < C; ++c) o[c] = int32_t(p[c]) * kCoefScale;
    } else {
      const int32_t a = w0[dx], b = w1[dx];
      for (int c = 0; c < C; ++c) o[c] = int32_t(p[c]) * a + int32_t(p[C + c]) * b;
    }
  }
}

uint8_t sat_u8(int32_t v) { return uint8_t(std::clamp(v, 0, 255)); }

// The vertical blend of two horizontal rows into `n` bytes, as OpenCV's SIMD row loop
// (VResizeLinearVec_32s8u) does it: each sum shifted right by 4 and saturated to int16, a
// 16-bit multiply-high by the weight ((a * b) >> 16, flooring), the two added, then
// (v + 2) >> 2 saturated to 0..255. The exact rounding (s0 * b0 + s1 * b1 + 2^21) >> 22 of
// OpenCV's scalar code differs from this by 1 in a few bytes; OpenCV 5's x86 build uses the
// SIMD form for whole rows, tail included (the fixtures match every byte this way).
void vertical(const int32_t* s0, const int32_t* s1, int16_t b0, int16_t b1, int n, uint8_t* dst) {
  const int32_t w0 = b0, w1 = b1;
  for (int x = 0; x < n; ++x) {
    const int32_t a0 = std::clamp<int32_t>(s0[x] >> 4, INT16_MIN, INT16_MAX);
    const int32_t a1 = std::clamp<int32_t>(s1[x] >> 4, INT16_MIN, INT16_MAX);
    const int16_t v = int16_t(((a0 * w0) >> 16) + ((a1 * w1) >> 16));  // 16-bit lanes: wraps as OpenCV's add
    dst[x] = sat_u8((int32_t(v) + 2) >> 2);
  }
}

}  // namespace

Image cv_resize_linear(const Image& src, int out_height, int out_width) {
  if (out_height < 1 || out_width < 1)
    throw std::invalid_argument("cv_resize_linear: output size: expected >= 1x1, got " + std::to_string(out_height) +
                                "x" + std::to_string(out_width));
  if (src.empty())
    throw std::invalid_argument("cv_resize_linear: src: expected a non-empty image, got " +
                                std::to_string(src.height) + "x" + std::to_string(src.width));
  if (src.channels != 1 && src.channels != 3)
    throw std::invalid_argument("cv_resize_linear: src: expected 1 or 3 channels, got " + std::to_string(src.channels));
  if (out_height == src.height && out_width == src.width) return src;
  const int C = src.channels, H = src.height, W = src.width;
  const CvTaps tx = make_cv_taps(W, out_width, true), ty = make_cv_taps(H, out_height, false);
  const int n = out_width * C;
  Image out(out_height, out_width, C);
  // Two cached horizontal rows: consecutive output rows mostly reuse the same source rows.
  std::vector<int32_t> buf[2] = {std::vector<int32_t>(size_t(n)), std::vector<int32_t>(size_t(n))};
  int cached[2] = {-1, -1};
  // The horizontal pass of row y, computed into the slot that does not hold `keep`.
  auto hrow = [&](int y, int keep) -> const int32_t* {
    for (int k = 0; k < 2; ++k)
      if (cached[k] == y) return buf[k].data();
    const int slot = cached[0] == keep ? 1 : 0;
    if (C == 3) horizontal<3>(src.row(y), W, tx, buf[slot].data());
    else horizontal<1>(src.row(y), W, tx, buf[slot].data());
    cached[slot] = y;
    return buf[slot].data();
  };
  for (int dy = 0; dy < out_height; ++dy) {
    const int sy = ty.src[size_t(dy)];
    const int y0 = std::clamp(sy, 0, H - 1), y1 = std::clamp(sy + 1, 0, H - 1);  // OpenCV clips rows
    const int32_t* r0 = hrow(y0, y1);
    const int32_t* r1 = hrow(y1, y0);
    vertical(r0, r1, ty.w0[size_t(dy)], ty.w1[size_t(dy)], n, out.row(dy));
  }
  return out;
}

Image cv_resize_nearest(const Image& src, int out_height, int out_width) {
  if (out_height < 1 || out_width < 1)
    throw std::invalid_argument("cv_resize_nearest: output size: expected >= 1x1, got " + std::to_string(out_height) +
                                "x" + std::to_string(out_width));
  if (src.empty())
    throw std::invalid_argument("cv_resize_nearest: src: expected a non-empty image, got " +
                                std::to_string(src.height) + "x" + std::to_string(src.width));
  const int C = src.channels;
  // OpenCV's scale is the inverse of the inverse scale, as in make_cv_taps.
  const double fx = 1.0 / (double(out_width) / double(src.width)), fy = 1.0 / (double(out_height) / double(src.height));
  std::vector<int> xs(static_cast<size_t>(out_width));
  for (int x = 0; x < out_width; ++x) xs[size_t(x)] = std::min(int(std::floor(x * fx)), src.width - 1);
  Image out(out_height, out_width, C);
  for (int y = 0; y < out_height; ++y) {
    const uint8_t* s = src.row(std::min(int(std::floor(y * fy)), src.height - 1));
    uint8_t* d = out.row(y);
    for (int x = 0; x < out_width; ++x)
      for (int c = 0; c < C; ++c) d[x * C + c] = s[xs[size_t(x)] * C + c];
  }
  return out;
}

}  // namespace rv::data
