// im2col.cu: im2col and col2im, the two data-movement kernels of conv2d on CUDA.
//
// conv2d on the device is  cols = im2col(x);  y_g = cols_g · W_gᵀ  (the project's SGEMM, one
// batched call over the groups);  and its input gradient is  dx = col2im(dy_g · W_g). Weight
// and bias gradients come from the GEMM's own backward. So the convolution's arithmetic runs in
// the tuned GEMM, and these kernels only move data.
//
// Layout of cols: (G, B*Ho*Wo, Kc) with Kc = C/G*KH*KW, row r = (b, oh, ow), column (c, kh, kw)
// in the weight's (O, C/G, KH, KW) order, so the weight of group g viewed (O/G, Kc) multiplies
// the rows directly.
//
//   im2col  one thread per cols element, in cols order (a grid-stride loop): consecutive threads
//           write consecutive addresses (coalesced stores); the reads of neighbouring kw taps are
//           neighbouring pixels. A tap on padding writes 0.
//   col2im  one thread per INPUT pixel (b, c, h, w), which gathers every cols entry copied from
//           it: for each (kh, kw) the output pixel (oh, ow) with oh*sh - ph + kh*dh == h (and the
//           same for w), if it is a whole number inside [0, Ho) x [0, Wo). Adding in (kh, kw)
//           order by one thread makes the sum deterministic without atomics (overlapping windows
//           would otherwise need atomicAdd, whose order varies from run to run).
// Index math is in int64 (B*Ho*Wo*Kc passes 2^31 for large images).
#include "cuda/kernels/im2col.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void im2col_kernel(T* __restrict__ cols, const T* __restrict__ x, Im2colGeom g, int64_t n) {
  const int64_t Cg = g.C / g.G, Kc = Cg * g.KH * g.KW;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = e % Kc;
    int64_t r = e / Kc;
    const int64_t ow = r % g.Wo;
    r /= g.Wo;
    const int64_t oh = r % g.Ho;
    r /= g.Ho;
    const int64_t b = r % g.B, grp = r / g.B;
    const int64_t kw = kk % g.KW, kh = (kk / g.KW) % g.KH, cg = kk / (g.KW * g.KH);
    const int64_t h = oh * g.sh - g.ph + kh * g.dh, w = ow * g.sw - g.pw + kw * g.dw;
    const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
    cols[e] = inside ? x[((b * g.C + grp * Cg + cg) * g.H + h) * g.W + w] : T(0);
  }
}

template <class T>
__global__ void col2im_kernel(T* __restrict__ dx, const T* __restrict__ cols, Im2colGeom g, int64_t n) {
  const int64_t Cg = g.C / g.G, Kc = Cg * g.KH * g.KW;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = e % g.W, h = (e / g.W) % g.H, c = (e / (g.W * g.H)) % g.C, b = e / (g.W * g.H * g.C);
    const int64_t grp = c / Cg, cg = c % Cg;
    // Row (b, 0, 0) of group grp, and the first column of channel cg.
    const T* base = cols + (grp * g.B + b) * g.Ho * g.Wo * Kc + cg * g.KH * g.KW;
    T acc = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t th = h + g.ph - kh * g.dh;  // = oh * sh when this tap of output row oh reads h
      if (th < 0 || th % g.sh != 0) continue;   // th < 0 first: % of a negative number is negative
      const int64_t oh = th / g.sh;
      if (oh >= g.Ho) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t tw = w + g.pw - kw * g.dw;
        if (tw < 0 || tw % g.sw != 0) continue;
        const int64_t ow = tw / g.sw;
        if (ow >= g.Wo) continue;
        acc += base[(oh * g.Wo + ow) * Kc + kh * g.KW + kw];
      }
    }
    dx[e] = acc;
  }
}

}  // namespace

void launch_im2col(DType dtype, void* cols, const void* x, const Im2colGeom& g, cudaStream_t stream) {
  const int64_t n = g.G * g.B * g.Ho * g.Wo * (g.C / g.G) * g.KH * g.KW;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (dtype == DType::f32)
    im2col_kernel<<<grid, kThreads, 0, stream>>>(static_cast<float*>(cols), static_cast<const float*>(x), g, n);
  else if (dtype == DType::f64)
    im2col_kernel<<<grid, kThreads, 0, stream>>>(static_cast<double*>(cols), static_cast<const double*>(x), g, n);
  else
    throw std::invalid_argument(std::string("conv2d (im2col): launcher takes f32 or f64, got ") + dtype_name(dtype));
  RV_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void launch_col2im(DType dtype, void* dx, const void* cols, const Im2colGeom& g, cudaStream_t stream) {
  const int64_t n = g.B * g.C * g.H * g.W;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (dtype == DType::f32)
    col2im_kernel<<<grid, kThreads, 0, stream>>>(static_cast<float*>(dx), static_cast<const float*>(cols), g, n);
  else if (dtype == DType::f64)
    col2im_kernel<<<grid, kThreads, 0, stream>>>(static_cast<double*>(dx), static_cast<const double*>(cols), g, n);
  else
    throw std::invalid_argument(std::string("conv2d backward (col2im): launcher takes f32 or f64, got ") +
                                dtype_name(dtype));
  RV_CUDA_CHECK_LAUNCH("col2im_kernel");
}

}  // namespace rv::cuda
