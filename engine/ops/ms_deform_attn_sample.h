// ms_deform_attn_sample.h: where one sampling point of multi-scale deformable attention reads, as
// PyTorch's grid_sample(bilinear, zeros, align_corners=False) reads it. Shared by the CPU forward and
// backward (engine/ops/ms_deform_attn.cpp) so that both take the same taps with the same weights.
//
// A location (x, y) in [0, 1] of a level (H, W) is the pixel coordinate
//   ix = x * W - 0.5,  iy = y * H - 0.5        (grid_sample's ((2x - 1) + 1) * W - 1) / 2)
// and bilinear interpolation reads the four pixels around it, in grid_sample's order
//   nw (y0, x0), ne (y0, x0 + 1), sw (y0 + 1, x0), se (y0 + 1, x0 + 1),   x0 = floor(ix), y0 = floor(iy)
// with weights (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx  where fx = ix - x0, fy = iy - y0.
// A tap outside the map reads 0 (padding_mode zeros): it is marked with index -1.
#pragma once
#include <cmath>
#include <cstdint>

namespace rv::msda {

template <class T>
struct Taps {
  int64_t index[4];  // h * W + w inside the level for nw, ne, sw, se; -1 when outside the map
  T weight[4];       // bilinear weights of the four taps
  // d weight[t] / d ix and d weight[t] / d iy: what the location gradient needs.
  T dwx[4];
  T dwy[4];
};

// Fills `t` for location (x, y) of a level (H, W). Returns false when no tap can be inside the map
// (then nothing is read, and every gradient of this point is 0 except through the zero weights):
// that is when ix or iy lies beyond one pixel outside, or is not finite (NaN, inf).
template <class T>
inline bool bilinear_taps(T x, T y, int64_t H, int64_t W, Taps<T>& t) {
  const T ix = x * T(W) - T(0.5), iy = y * T(H) - T(0.5);
  // Outside [-2, W + 1] every tap is at least one pixel out; the guard also keeps floor() of huge
  // or non-finite coordinates from overflowing int64. Inside it, taps are checked one by one below.
  if (!(ix >= T(-2) && ix <= T(W + 1) && iy >= T(-2) && iy <= T(H + 1))) return false;
  const T fx0 = std::floor(ix), fy0 = std::floor(iy);
  const int64_t x0 = int64_t(fx0), y0 = int64_t(fy0);
  const T fx = ix - fx0, fy = iy - fy0;
  const T gx = T(1) - fx, gy = T(1) - fy;  // 1 - fx, 1 - fy
  t.weight[0] = gy * gx;
  t.weight[1] = gy * fx;
  t.weight[2] = fy * gx;
  t.weight[3] = fy * fx;
  t.dwx[0] = -gy, t.dwx[1] = gy, t.dwx[2] = -fy, t.dwx[3] = fy;
  t.dwy[0] = -gx, t.dwy[1] = -fx, t.dwy[2] = gx, t.dwy[3] = fx;
  const bool x0_in = x0 >= 0 && x0 < W, x1_in = x0 + 1 >= 0 && x0 + 1 < W;
  const bool y0_in = y0 >= 0 && y0 < H, y1_in = y0 + 1 >= 0 && y0 + 1 < H;
  t.index[0] = (y0_in && x0_in) ? y0 * W + x0 : -1;
  t.index[1] = (y0_in && x1_in) ? y0 * W + x0 + 1 : -1;
  t.index[2] = (y1_in && x0_in) ? (y0 + 1) * W + x0 : -1;
  t.index[3] = (y1_in && x1_in) ? (y0 + 1) * W + x0 + 1 : -1;
  return t.index[0] >= 0 || t.index[1] >= 0 || t.index[2] >= 0 || t.index[3] >= 0;
}

}  // namespace rv::msda
