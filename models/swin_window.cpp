// swin_window.cpp: the window rule, the shifted-window mask and the window partition.
#include "models/swin_window.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace rv::models {

SwinWindow swin_block_window(int64_t res_h, int64_t res_w, int64_t ws, bool shifted) {
  if (res_h <= 0 || res_w <= 0 || ws <= 0)
    throw std::invalid_argument("swin_block_window: expected a positive resolution and window, got " +
                                std::to_string(res_h) + "x" + std::to_string(res_w) + " and ws " + std::to_string(ws));
  const int64_t shift = shifted ? ws / 2 : 0;
  SwinWindow w;
  // Per axis: a window larger than the map shrinks to it, and then nothing is left to shift.
  w.wh = res_h <= ws ? res_h : ws;
  w.ww = res_w <= ws ? res_w : ws;
  w.sh = res_h <= ws ? 0 : shift;
  w.sw = res_w <= ws ? 0 : shift;
  return w;
}

Tensor swin_shift_mask(int64_t Hp, int64_t Wp, const SwinWindow& w) {
  if (!w.shifted()) return Tensor();
  if (Hp % w.wh != 0 || Wp % w.ww != 0)
    throw std::invalid_argument("swin_shift_mask: the padded map " + std::to_string(Hp) + "x" + std::to_string(Wp) +
                                " is not a multiple of the window " + std::to_string(w.wh) + "x" +
                                std::to_string(w.ww));
  // Region of a row (or column) of the rolled map: [0, n-win) the windows that did not wrap,
  // [n-win, n-shift) the part of the last window that stayed, [n-shift, n) what wrapped around.
  // An axis without shift is one region (timm's slices then all collapse onto one label).
  auto region = [](int64_t i, int64_t n, int64_t win, int64_t shift) -> int64_t {
    if (shift == 0) return 0;
    return i < n - win ? 0 : (i < n - shift ? 1 : 2);
  };
  std::vector<int64_t> label(size_t(Hp * Wp));
  for (int64_t r = 0; r < Hp; ++r)
    for (int64_t c = 0; c < Wp; ++c)
      label[size_t(r * Wp + c)] = 3 * region(r, Hp, w.wh, w.sh) + region(c, Wp, w.ww, w.sw);
  const int64_t nWh = Hp / w.wh, nWw = Wp / w.ww, nW = nWh * nWw, N = w.area();
  Tensor mask = zeros({nW, N, N});
  float* m = mask.data<float>();
  for (int64_t win = 0; win < nW; ++win) {
    const int64_t r0 = (win / nWw) * w.wh, c0 = (win % nWw) * w.ww;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t li = label[size_t((r0 + i / w.ww) * Wp + c0 + i % w.ww)];
      for (int64_t j = 0; j < N; ++j) {
        const int64_t lj = label[size_t((r0 + j / w.ww) * Wp + c0 + j % w.ww)];
        m[(win * N + i) * N + j] = li == lj ? 0.0f : -100.0f;
      }
    }
  }
  return mask;
}

Tensor swin_partition(const Tensor& x, int64_t wh, int64_t ww) {
  if (x.dim() != 4 || wh <= 0 || ww <= 0 || x.size(1) % wh != 0 || x.size(2) % ww != 0)
    throw std::invalid_argument("swin_partition: expected x (B, H, W, C) with H, W multiples of the window " +
                                std::to_string(wh) + "x" + std::to_string(ww) + ", got " + shape_str(x.shape()));
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  // (B, H/wh, wh, W/ww, ww, C) -> (B, H/wh, W/ww, wh, ww, C): window (wr, wc), then its tokens.
  return x.reshape({B, H / wh, wh, W / ww, ww, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B * (H / wh) * (W / ww), wh * ww, C});
}

Tensor swin_reverse(const Tensor& windows, int64_t wh, int64_t ww, int64_t Hp, int64_t Wp) {
  if (wh <= 0 || ww <= 0 || Hp <= 0 || Wp <= 0 || Hp % wh != 0 || Wp % ww != 0 || windows.dim() != 3 ||
      windows.size(1) != wh * ww || windows.size(0) % ((Hp / wh) * (Wp / ww)) != 0)
    throw std::invalid_argument("swin_reverse: expected windows (B*nW, " + std::to_string(wh * ww) + ", C) of a " +
                                std::to_string(Hp) + "x" + std::to_string(Wp) + " map with window " +
                                std::to_string(wh) + "x" + std::to_string(ww) + ", got " + shape_str(windows.shape()));
  const int64_t nW = (Hp / wh) * (Wp / ww), B = windows.size(0) / nW, C = windows.size(2);
  return windows.reshape({B, Hp / wh, Wp / ww, wh, ww, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, Hp, Wp, C});
}

}  // namespace rv::models
