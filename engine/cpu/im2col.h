// im2col.h: the geometry of a 2-D convolution and the two layout transforms that turn it
// into matrix products.
//
// A convolution of one image and one group, x (Cg, H, W) -> y (Og, Ho, Wo), is the product
//   y (Og, Ho*Wo) = w (Og, Cg*KH*KW) · col (Cg*KH*KW, Ho*Wo)
// where row (c, i, j) of col holds, for every output pixel, the input value under kernel tap
// (i, j) of channel c (0 where the tap falls in the padding). im2col builds col; col2im does the
// transpose (adjoint) operation, adding each col entry back onto the pixel it was read from, which
// is what the input gradient (and the transposed convolution) needs.
#pragma once
#include <algorithm>
#include <cstdint>

#include "engine/cpu/parallel.h"

namespace rv::cpu {

// All sizes in conv2d terms: input (B, C, H, W) -> output (B, O, Ho, Wo), weight (O, C/G, KH, KW).
// A transposed convolution uses the same geometry with its input and output swapped.
struct ConvGeom {
  int64_t B, C, H, W, O, Ho, Wo, KH, KW, SH, SW, PH, PW, DH, DW, G;
  int64_t cg() const { return C / G; }                 // input channels per group
  int64_t og() const { return O / G; }                 // output channels per group
  int64_t ckk() const { return cg() * KH * KW; }       // rows of col = columns of a group's weight
  int64_t hw() const { return Ho * Wo; }               // output pixels per image
  // 1x1, stride 1, no padding: col is the image itself, no im2col needed.
  bool pointwise() const {
    return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && Ho == H && Wo == W;
  }
};

// Output columns ow whose input column ow*SW + off lies in [0, W): [lo, hi).
inline void valid_cols(int64_t off, int64_t SW, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
  hi = (W - 1 - off) < 0 ? 0 : std::min<int64_t>(Wo, (W - 1 - off) / SW + 1);
  lo = std::min(lo, Wo);
  if (hi < lo) hi = lo;
}

// col (Cg*KH*KW, Ho*Wo) from one image group x (Cg, H, W). Parallel over channels when called
// outside a parallel region.
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  const int64_t hw = g.hw();
  parallel_for(g.cg(), std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.KH * g.KW * hw)),
               [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = 0; i < g.KH; ++i)
        for (int64_t j = 0; j < g.KW; ++j) {
          T* dst = col + ((c * g.KH + i) * g.KW + j) * hw;
          const int64_t off = j * g.DW - g.PW;
          int64_t lo, hi;
          valid_cols(off, g.SW, g.W, g.Wo, lo, hi);
          for (int64_t oh = 0; oh < g.Ho; ++oh) {
            T* d = dst + oh * g.Wo;
            const int64_t ih = oh * g.SH - g.PH + i * g.DH;
            if (ih < 0 || ih >= g.H) {
              std::fill(d, d + g.Wo, T(0));
              continue;
            }
            const T* s = x + (c * g.H + ih) * g.W;  // input row; column ow*SW + off
            std::fill(d, d + lo, T(0));
            if (g.SW == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[ow + off];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[ow * g.SW + off];
            }
            std::fill(d + hi, d + g.Wo, T(0));
          }
        }
  });
}

// dx (Cg, H, W) += the adjoint of im2col applied to col. Each channel's plane is written by one
// thread, in a fixed order, so the sums do not depend on the thread count.
template <class T>
void col2im_add(const ConvGeom& g, const T* col, T* dx) {
  const int64_t hw = g.hw();
  parallel_for(g.cg(), std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.KH * g.KW * hw)),
               [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = 0; i < g.KH; ++i)
        for (int64_t j = 0; j < g.KW; ++j) {
          const T* src = col + ((c * g.KH + i) * g.KW + j) * hw;
          const int64_t off = j * g.DW - g.PW;
          int64_t lo, hi;
          valid_cols(off, g.SW, g.W, g.Wo, lo, hi);
          for (int64_t oh = 0; oh < g.Ho; ++oh) {
            const int64_t ih = oh * g.SH - g.PH + i * g.DH;
            if (ih < 0 || ih >= g.H) continue;
            const T* s = src + oh * g.Wo;
            T* d = dx + (c * g.H + ih) * g.W;
            if (g.SW == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) d[ow + off] += s[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) d[ow * g.SW + off] += s[ow];
            }
          }
        }
  });
}

}  // namespace rv::cpu
