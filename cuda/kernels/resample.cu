// resample.cu: interpolate's separable resampling, forward and backward, for every mode.
//
// The host (engine/ops/interpolate.cpp) turns each mode (nearest, linear, bilinear, bicubic,
// antialiased or not) into two tap tables, one per spatial dim: output index o reads a few
// inputs with given weights. The kernels only apply tables, so one pair serves every mode and
// the weights are exactly the CPU's.
//
//   forward   one thread per output cell (p, oh, ow), grid-stride: for each height tap i, the
//             weighted sum of its row over the width taps, then those row sums weighted by the
//             height taps: the CPU's order (width inside, height outside, taps in table order).
//             The CPU shares the width sums between output rows through a scratch plane; here
//             each thread recomputes the few it needs (KH * KW multiply-adds, 2 x 2 for
//             bilinear), which costs less than a second kernel and a scratch buffer.
//   backward  a gather, not a scatter: one thread per INPUT cell (p, h, w) walks the inverse
//             tables (which output columns read w, which output rows read h), forming for each
//             output column the sum over output rows first, then weighting it by the column
//             weight: the CPU's two transposed passes (height, then width), in its order. Each
//             input cell is written by one thread, so no atomics and run-to-run identical bits.
// Neighbouring threads take neighbouring columns, so the reads of a row coalesce (the same few
// taps are read by a warp: they sit in L1).
#include "cuda/kernels/resample.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void resample_forward_kernel(T* __restrict__ out, const T* __restrict__ x, ResampleTables t, int64_t n) {
  const T* hw = static_cast<const T*>(t.hw);
  const T* ww = static_cast<const T*>(t.ww);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = e % t.OW, oh = (e / t.OW) % t.OH, p = e / (t.OW * t.OH);
    const int64_t* iw = t.widx + ow * t.KW;
    const T* wwo = ww + ow * t.KW;
    const int64_t nw = t.wn[ow];
    const T* plane = x + p * t.H * t.W;
    // Row hr of the plane resampled to column ow (the CPU's width pass; skipped, as there, when
    // the width is an identity, so an Inf or NaN is not multiplied by a zero weight).
    auto row_value = [&](int64_t hr) -> T {
      const T* row = plane + hr * t.W;
      if (t.w_identity) return row[ow];
      T r = row[iw[0]] * wwo[0];
      for (int64_t j = 1; j < nw; ++j) r += row[iw[j]] * wwo[j];
      return r;
    };
    if (t.h_identity) {
      out[e] = row_value(oh);
      continue;
    }
    const int64_t* ih = t.hidx + oh * t.KH;
    const T* wh = hw + oh * t.KH;
    T acc = row_value(ih[0]) * wh[0];
    for (int64_t i = 1; i < t.hn[oh]; ++i) acc += row_value(ih[i]) * wh[i];
    out[e] = acc;
  }
}

template <class T>
__global__ void resample_backward_kernel(T* __restrict__ dx, const T* __restrict__ g, ResampleTables t, int64_t n) {
  const T* hwt = static_cast<const T*>(t.hwt);
  const T* wwt = static_cast<const T*>(t.wwt);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = e % t.W, h = (e / t.W) % t.H, p = e / (t.W * t.H);
    const T* gp = g + p * t.OH * t.OW;
    // Column oc of the CPU's height-transposed plane at row h: the output rows that read h,
    // weighted, summed from zero in the CPU's order (a copy when the height is an identity).
    auto column_value = [&](int64_t oc) -> T {
      if (t.h_identity) return gp[h * t.OW + oc];
      T r = T(0);
      for (int64_t k = t.hoff[h]; k < t.hoff[h + 1]; ++k) r += gp[t.hout[k] * t.OW + oc] * hwt[k];
      return r;
    };
    if (t.w_identity) {
      dx[e] = column_value(w);
      continue;
    }
    T acc = T(0);
    for (int64_t m = t.woff[w]; m < t.woff[w + 1]; ++m) acc += column_value(t.wout[m]) * wwt[m];
    dx[e] = acc;
  }
}

template <class T>
void forward_as(void* out, const void* x, const ResampleTables& t, int64_t n, cudaStream_t stream) {
  resample_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(out),
                                                                         static_cast<const T*>(x), t, n);
  RV_CUDA_CHECK_LAUNCH("resample_forward_kernel");
}

template <class T>
void backward_as(void* dx, const void* g, const ResampleTables& t, int64_t n, cudaStream_t stream) {
  resample_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(dx),
                                                                          static_cast<const T*>(g), t, n);
  RV_CUDA_CHECK_LAUNCH("resample_backward_kernel");
}

}  // namespace

void launch_resample_forward(DType dtype, void* out, const void* x, const ResampleTables& t, cudaStream_t stream) {
  const int64_t n = t.P * t.OH * t.OW;
  if (n == 0) return;
  if (dtype == DType::f32) forward_as<float>(out, x, t, n, stream);
  else if (dtype == DType::f64) forward_as<double>(out, x, t, n, stream);
  else throw std::invalid_argument(std::string("interpolate: launcher takes f32 or f64, got ") + dtype_name(dtype));
}

void launch_resample_backward(DType dtype, void* dx, const void* g, const ResampleTables& t, cudaStream_t stream) {
  const int64_t n = t.P * t.H * t.W;
  if (n == 0) return;
  if (dtype == DType::f32) backward_as<float>(dx, g, t, n, stream);
  else if (dtype == DType::f64) backward_as<double>(dx, g, t, n, stream);
  else
    throw std::invalid_argument(std::string("interpolate backward: launcher takes f32 or f64, got ") +
                                dtype_name(dtype));
}

}  // namespace rv::cuda
