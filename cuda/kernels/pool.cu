// pool.cu: 2-D max / average pooling, forward and backward, for sliding and adaptive windows.
//
// The host (engine/ops/pool.cpp) describes every pooling op the same way: output cell (oh, ow)
// reads the rectangle (span of rows) x (span of columns), one span table per dim. The device
// code takes those tables as they are, so one pair of kernels serves max_pool2d, avg_pool2d,
// adaptive_avg_pool2d and adaptive_max_pool2d, and the windows are exactly the CPU's.
//
//   forward   one thread per output cell (p, oh, ow), grid-stride: walks its rectangle in the
//             CPU's order (rows outer, columns inner). max keeps the first maximum (a NaN wins)
//             and its flat index; avg sums in T and applies the op's divisor rule.
//   backward  a gather, not a scatter: one thread per INPUT cell (p, h, w) visits the output
//             cells whose window covers it, from the inverse tables (for each row h, the output
//             rows oh with lo <= h < hi, ascending; the same for columns), in ascending (oh, ow)
//             order, and adds the output gradient (max: only where the saved index is this cell;
//             avg: the gradient divided as in the forward). Each input is written by one thread
//             in the CPU's order, so no atomics and bit-identical results to the CPU.
// Neighbouring threads take neighbouring columns, so the reads of x / g and the writes coalesce.
#include "cuda/kernels/pool.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

// The average of `sum` over the window (hspan[oh], wspan[ow]) under `mode` (pool.cpp's rule).
template <class T>
__device__ __forceinline__ T avg_scale(T sum, PoolMode mode, const int64_t* a, const int64_t* b, int64_t divisor) {
  switch (mode) {
    case PoolMode::avg_adaptive: return sum / T(a[1] - a[0]) / T(b[1] - b[0]);
    case PoolMode::avg_fixed: return sum / T(divisor);
    case PoolMode::avg_padded: return sum / T(a[2] * b[2]);
    default: return sum / T((a[1] - a[0]) * (b[1] - b[0]));  // avg_clipped
  }
}

template <class T>
__global__ void pool_forward_kernel(PoolMode mode, T* __restrict__ out, int64_t* __restrict__ idx,
                                    const T* __restrict__ x, PoolTables t, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = e % t.OW, oh = (e / t.OW) % t.OH, p = e / (t.OW * t.OH);
    const int64_t* a = t.hspan + 3 * oh;
    const int64_t* b = t.wspan + 3 * ow;
    const T* xp = x + p * t.H * t.W;
    if (mode == PoolMode::max) {
      T best = -T(INFINITY);
      int64_t best_i = a[0] * t.W + b[0];
      for (int64_t h = a[0]; h < a[1]; h += t.step_h)
        for (int64_t w = b[0]; w < b[1]; w += t.step_w) {
          const T v = xp[h * t.W + w];
          if (v > best || isnan(v)) {
            best = v;
            best_i = h * t.W + w;
          }
        }
      out[e] = best;
      idx[e] = best_i;
    } else {
      T sum = T(0);
      for (int64_t h = a[0]; h < a[1]; ++h)
        for (int64_t w = b[0]; w < b[1]; ++w) sum += xp[h * t.W + w];
      out[e] = avg_scale(sum, mode, a, b, t.divisor);
    }
  }
}

template <class T>
__global__ void pool_backward_kernel(PoolMode mode, T* __restrict__ dx, const T* __restrict__ g,
                                     const int64_t* __restrict__ idx, PoolTables t, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = e % t.W, h = (e / t.W) % t.H, p = e / (t.W * t.H);
    const int64_t base = p * t.OH * t.OW, self = h * t.W + w;
    T acc = T(0);
    for (int64_t j = t.hoff[h]; j < t.hoff[h + 1]; ++j) {
      const int64_t oh = t.hlist[j];
      for (int64_t m = t.woff[w]; m < t.woff[w + 1]; ++m) {
        const int64_t ow = t.wlist[m], o = base + oh * t.OW + ow;
        if (mode == PoolMode::max) {
          if (idx[o] == self) acc += g[o];
        } else {
          acc += avg_scale(g[o], mode, t.hspan + 3 * oh, t.wspan + 3 * ow, t.divisor);
        }
      }
    }
    dx[e] = acc;
  }
}

}  // namespace

void launch_pool_forward(PoolMode mode, DType dtype, void* out, int64_t* idx, const void* x, const PoolTables& t,
                         cudaStream_t stream) {
  const int64_t n = t.P * t.OH * t.OW;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (dtype == DType::f32)
    pool_forward_kernel<<<grid, kThreads, 0, stream>>>(mode, static_cast<float*>(out), idx,
                                                       static_cast<const float*>(x), t, n);
  else if (dtype == DType::f64)
    pool_forward_kernel<<<grid, kThreads, 0, stream>>>(mode, static_cast<double*>(out), idx,
                                                       static_cast<const double*>(x), t, n);
  else
    throw std::invalid_argument(std::string("pool2d: launcher takes f32 or f64, got ") + dtype_name(dtype));
  RV_CUDA_CHECK_LAUNCH("pool_forward_kernel");
}

void launch_pool_backward(PoolMode mode, DType dtype, void* dx, const void* g, const int64_t* idx,
                          const PoolTables& t, cudaStream_t stream) {
  const int64_t n = t.P * t.H * t.W;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (dtype == DType::f32)
    pool_backward_kernel<<<grid, kThreads, 0, stream>>>(mode, static_cast<float*>(dx), static_cast<const float*>(g),
                                                        idx, t, n);
  else if (dtype == DType::f64)
    pool_backward_kernel<<<grid, kThreads, 0, stream>>>(mode, static_cast<double*>(dx),
                                                        static_cast<const double*>(g), idx, t, n);
  else
    throw std::invalid_argument(std::string("pool2d backward: launcher takes f32 or f64, got ") + dtype_name(dtype));
  RV_CUDA_CHECK_LAUNCH("pool_backward_kernel");
}

}  // namespace rv::cuda
