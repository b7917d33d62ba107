// patch_embed_kernel.h: the direct patch-embedding product, with no patch matrix: a
// register-blocked micro-kernel reads the image in place.
//
// A patch embedding (kernel == stride, no padding) writes, for each output pixel p = (b, oh, ow),
//   y[p][o] = bias[o] + sum over (c, i, j) of x[b][c][oh*KH + i][ow*KW + j] * w[o][c][i][j].
// Call (c, i) an image row ci of the patch (nci = C*KH of them) and j < KW a tap. Pixel p's values
// for image row ci start at  x + base(p) + ci_off[ci],  with base(p) = ((b*C*H + oh*KH)*W + ow*KW)
// and ci_off[ci] = (c*H + i)*W the same for every pixel: so the micro-kernel needs one pointer per
// pixel and one offset table, and a block of pixels may span patch rows and images. Gathering
// the patches into a matrix P first (an image-sized buffer written, then read by a GEMM) is
// not needed.
//
// Blocking: output channels are cut into strips of at most 4 SIMD vectors (W lanes each); wᵀ is
// packed strip by strip (each strip a contiguous (ckk, NV*W) panel, so a K-chunk of it is one
// contiguous block that stays in L1). K is cut into chunks of whole image rows, about kKChunk
// values: Swin's 4x4x3 = 48 is one chunk, ViT's 16x16x3 = 768 six chunks of 128. The micro-kernel
// keeps R x NV vectors of y in registers, starting from the bias (first chunk) or from y (later
// chunks), and stores them once per chunk. For every pixel the sum runs over (c, i, j) in the
// same order whatever the blocking, so the result does not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/cpu/attention_tiles.h"

namespace rv::cpu::patch {

using tiles::V;
using tiles::W;

inline constexpr int64_t kKChunk = 128;  // K values per chunk: a 4-vector panel chunk is 32 KB

// How the micro-kernel starts its accumulators.
enum class Init { kZero, kBias, kLoad };

// y[r][0 : NV*W] (=|+=) sum over image rows ci in [ci0, ci1) and taps j < kw of
//   px[r][ci_off[ci] + j] * wp[(ci*kw + j)*ldw + 0 : NV*W]          for r < R,
// starting from 0, bias, or y itself (Init).
template <class T, int R, int NV, Init I>
inline void micro(const T* const* px, const int64_t* ci_off, int64_t ci0, int64_t ci1, int64_t kw, const T* wp,
                  int64_t ldw, const T* bias, T* y, int64_t ldy) {
  V<T> acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = I == Init::kLoad   ? tiles::load(y + r * ldy + v * W<T>)
                  : I == Init::kBias ? tiles::load(bias + v * W<T>)
                                     : V<T>{};
  for (int64_t ci = ci0; ci < ci1; ++ci) {
    const T* a[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) a[r] = px[r] + ci_off[ci];
    const T* wc = wp + ci * kw * ldw;
    for (int64_t j = 0; j < kw; ++j) {
      V<T> b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = tiles::load(wc + j * ldw + v * W<T>);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V<T> xv = tiles::splat(a[r][j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] += xv * b[v];
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) tiles::store(y + r * ldy + v * W<T>, acc[r][v]);
}

// The last n % R pixels of a block: the micro-kernel with exactly that many rows.
template <class T, int NV, Init I, int Rr = 1>
inline void micro_rest(int rest, const T* const* px, const int64_t* ci_off, int64_t ci0, int64_t ci1, int64_t kw,
                       const T* wp, int64_t ldw, const T* bias, T* y, int64_t ldy) {
  if constexpr (Rr < tiles::kRows<NV>) {
    if (rest == Rr)
      micro<T, Rr, NV, I>(px, ci_off, ci0, ci1, kw, wp, ldw, bias, y, ldy);
    else
      micro_rest<T, NV, I, Rr + 1>(rest, px, ci_off, ci0, ci1, kw, wp, ldw, bias, y, ldy);
  }
}

// n pixels (pointers px, output rows y, ldy apart) times one strip panel, image rows [ci0, ci1).
template <class T, int NV, Init I>
void strip_chunk(int64_t n, const T* const* px, const int64_t* ci_off, int64_t ci0, int64_t ci1, int64_t kw,
                 const T* wp, const T* bias, T* y, int64_t ldy) {
  constexpr int R = tiles::kRows<NV>;
  constexpr int64_t ldw = NV * W<T>;
  int64_t p = 0;
  for (; p + R <= n; p += R) micro<T, R, NV, I>(px + p, ci_off, ci0, ci1, kw, wp, ldw, bias, y + p * ldy, ldy);
  if (p < n) micro_rest<T, NV, I>(int(n - p), px + p, ci_off, ci0, ci1, kw, wp, ldw, bias, y + p * ldy, ldy);
}

template <class T, int NV>
void strip(int64_t n, const T* const* px, const int64_t* ci_off, int64_t nci, int64_t kw, const T* wp,
           const T* bias, T* y, int64_t ldy) {
  const int64_t cis = std::max<int64_t>(1, kKChunk / kw);  // image rows per K chunk
  for (int64_t ci0 = 0; ci0 < nci; ci0 += cis) {
    const int64_t ci1 = std::min(nci, ci0 + cis);
    if (ci0 > 0)
      strip_chunk<T, NV, Init::kLoad>(n, px, ci_off, ci0, ci1, kw, wp, bias, y, ldy);
    else if (bias)
      strip_chunk<T, NV, Init::kBias>(n, px, ci_off, ci0, ci1, kw, wp, bias, y, ldy);
    else
      strip_chunk<T, NV, Init::kZero>(n, px, ci_off, ci0, ci1, kw, wp, bias, y, ldy);
  }
}

// Strips of at most 4 vectors, balanced (6 vectors -> 3 + 3; 24 -> six of 4).
inline int64_t strip_vectors(int64_t total, int64_t si) {
  const int64_t ns = (total + 3) / 4;
  return total / ns + (si < total % ns ? 1 : 0);
}

// wᵀ packed strip by strip: for each strip, its (ckk, nv*W) panel, contiguous. w is (O, ckk)
// row-major; O must be a multiple of W<T>. Returns the packed panels in `out`.
template <class T>
void pack_weight(const T* w, int64_t O, int64_t ckk, tiles::Buffer<T>& out) {
  T* dst = out.get(ckk * O);
  const int64_t total = O / W<T>, ns = (total + 3) / 4;
  for (int64_t si = 0, c0 = 0; si < ns; ++si) {
    const int64_t cols = strip_vectors(total, si) * W<T>;
    for (int64_t k = 0; k < ckk; ++k)
      for (int64_t c = 0; c < cols; ++c) dst[k * cols + c] = w[(c0 + c) * ckk + k];
    dst += ckk * cols;
    c0 += cols;
  }
}

// y (n, O) for n output pixels: px[r] points at pixel r's first tap of image row 0, ci_off[ci]
// (ci < nci) is image row ci's offset from it, kw taps per image row; wp from pack_weight;
// bias (O) or null. O must be a multiple of W<T>; y rows are O apart.
template <class T>
void patch_pixels(int64_t n, int64_t O, const T* const* px, const int64_t* ci_off, int64_t nci, int64_t kw,
                  const T* wp, const T* bias, T* y) {
  const int64_t total = O / W<T>, ns = (total + 3) / 4, ckk = nci * kw;
  for (int64_t si = 0, c0 = 0; si < ns; ++si) {
    const int64_t nv = strip_vectors(total, si);
    const T* bs = bias ? bias + c0 : nullptr;
    switch (nv) {
      case 4: strip<T, 4>(n, px, ci_off, nci, kw, wp, bs, y + c0, O); break;
      case 3: strip<T, 3>(n, px, ci_off, nci, kw, wp, bs, y + c0, O); break;
      case 2: strip<T, 2>(n, px, ci_off, nci, kw, wp, bs, y + c0, O); break;
      default: strip<T, 1>(n, px, ci_off, nci, kw, wp, bs, y + c0, O); break;
    }
    wp += ckk * nv * W<T>;
    c0 += nv * W<T>;
  }
}

}  // namespace rv::cpu::patch
