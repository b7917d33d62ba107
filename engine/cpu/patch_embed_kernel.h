// patch_embed_kernel.h: the direct patch-embedding product for short patches (Swin's 4x4x3), with
// no patch matrix: the register-blocked micro-kernel reads the image rows in place.
//
// A patch embedding (kernel == stride, no padding) of one patch row (image b, patch row oh) is
//   y[ow][o] = bias[o] + sum over (c, i, j) of x[b][c][oh*KH + i][ow*KW + j] * w[o][c][i][j]
// for ow < Wo: a (Wo x C*KH*KW) by (C*KH*KW x O) product whose left operand, for a fixed image
// row (c, i), is that row read with stride KW between output pixels and stride 1 between taps j.
// So instead of gathering the patches into a matrix P first (a pass that writes and then reads
// an image-sized buffer), the micro-kernel walks the C*KH image rows of the patch row directly.
//
// Layout: wt is wᵀ packed as (C*KH*KW, O) with O a multiple of the vector width W, so each tap's
// weights are whole vectors; y rows are O apart (channels-last tokens). The micro-kernel keeps an
// R x NV block of y in registers (R output pixels, NV vectors of channels), starts it from the
// bias and stores it once: y is written once, never read. The sum runs over (c, i, j) in that
// order for every pixel, so the result does not depend on how rows are split among threads.
#pragma once
#include <cstdint>

#include "engine/cpu/attention_tiles.h"

namespace rv::cpu::patch {

using tiles::V;
using tiles::W;

// y[r][0 : NV*W] = bias + sum over image rows ci < nci and taps j < kw of
//   rows[ci][r*kw + j] * wt[(ci*kw + j)*ldw + 0 : NV*W]      for r < R.
template <class T, int R, int NV>
inline void micro(const T* const* rows, int64_t nci, int64_t kw, const T* wt, int64_t ldw, const T* bias, T* y,
                  int64_t ldy) {
  V<T> acc[R][NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const V<T> b = bias ? tiles::load(bias + v * W<T>) : V<T>{};
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t ci = 0; ci < nci; ++ci) {
    const T* a = rows[ci];
    const T* wc = wt + ci * kw * ldw;
    for (int64_t j = 0; j < kw; ++j) {
      V<T> b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = tiles::load(wc + j * ldw + v * W<T>);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V<T> x = tiles::splat(a[r * kw + j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] += x * b[v];
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) tiles::store(y + r * ldy + v * W<T>, acc[r][v]);
}

// The last n % R pixels of a strip: the micro-kernel with exactly that many rows.
template <class T, int NV, int Rr = 1>
inline void micro_rest(int rest, const T* const* rows, int64_t nci, int64_t kw, const T* wt, int64_t ldw,
                       const T* bias, T* y, int64_t ldy) {
  if constexpr (Rr < tiles::kRows<NV>) {
    if (rest == Rr)
      micro<T, Rr, NV>(rows, nci, kw, wt, ldw, bias, y, ldy);
    else
      micro_rest<T, NV, Rr + 1>(rest, rows, nci, kw, wt, ldw, bias, y, ldy);
  }
}

// One strip of NV vectors of output channels for all n pixels. `rows` holds the nci image-row
// pointers at pixel 0; `moved` is scratch for them advanced to the current block of pixels.
template <class T, int NV>
void strip(int64_t n, const T* const* rows, const T** moved, int64_t nci, int64_t kw, const T* wt, int64_t ldw,
           const T* bias, T* y, int64_t ldy) {
  constexpr int R = tiles::kRows<NV>;
  for (int64_t p = 0; p < n; p += R) {
    for (int64_t ci = 0; ci < nci; ++ci) moved[ci] = rows[ci] + p * kw;
    if (p + R <= n)
      micro<T, R, NV>(moved, nci, kw, wt, ldw, bias, y + p * ldy, ldy);
    else
      micro_rest<T, NV>(int(n - p), moved, nci, kw, wt, ldw, bias, y + p * ldy, ldy);
  }
}

// y (n, O) for n output pixels of one patch row: rows[ci] (ci < nci = C*KH) points at the image
// row (c, i) of the patch row, at the first pixel's first tap; wt is wᵀ (nci*kw, O) packed with
// rows O apart; bias (O) or null. O must be a multiple of W<T>. `moved` is scratch of nci pointers.
template <class T>
void patch_row(int64_t n, int64_t O, const T* const* rows, const T** moved, int64_t nci, int64_t kw, const T* wt,
               const T* bias, T* y) {
  // Strips of at most 4 vectors, balanced (6 vectors -> 3 + 3, each with 8 pixels per block).
  const int64_t total = O / W<T>, ns = (total + 3) / 4;
  for (int64_t si = 0, c0 = 0; si < ns; ++si) {
    const int64_t nv = total / ns + (si < total % ns ? 1 : 0);
    const T* bs = bias ? bias + c0 : nullptr;
    switch (nv) {
      case 4: strip<T, 4>(n, rows, moved, nci, kw, wt + c0, O, bs, y + c0, O); break;
      case 3: strip<T, 3>(n, rows, moved, nci, kw, wt + c0, O, bs, y + c0, O); break;
      case 2: strip<T, 2>(n, rows, moved, nci, kw, wt + c0, O, bs, y + c0, O); break;
      default: strip<T, 1>(n, rows, moved, nci, kw, wt + c0, O, bs, y + c0, O); break;
    }
    c0 += nv * W<T>;
  }
}

}  // namespace rv::cpu::patch
