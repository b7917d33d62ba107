// softmax.cu: row-wise softmax / log_softmax over the last dim, forward and fused backward.
//
// Two mappings, chosen by the row length `len`:
//   - len <= 1024 (attention rows: 197, 49, ...): one warp per row, 4 rows per 128-thread block.
//     Lane l holds elements (it * 32 + l) * V + v of its row in registers (kIters * V <= 32 of
//     them), so the input is read from memory exactly once: the max and the sum of exp are warp
//     butterflies over the registers, and the output is written from them. kIters is a template
//     parameter (the next power of two >= len / (32 V)), so the register array is fully unrolled.
//   - len > 1024: one 512-thread block per row. One pass over the row keeps an online (max, sum
//     of exp) per thread (row_reduce.cuh: seeing a larger value rescales the sum), the block
//     combines them, and a second pass (an L2 hit for rows up to a few MB) writes the output.
// V = 16 / sizeof(T) (128-bit loads and stores: 4 f32, 8 bf16, 2 f64) when len % V == 0 and
// both pointers are 16-byte aligned, so every row starts aligned; else V = 1. Consecutive lanes
// touch consecutive packs, so every access coalesces.
// Math in float for f32 and bf16 (bf16 is loaded, widened, and rounded once at the store), double
// for f64; expf / logf (not __expf), so results match the CPU within ~1e-6 relative.
// Non-finite values as the CPU: a row that is all -inf or holds +inf or NaN is NaN; -inf next
// to finite values gives 0 (log_softmax: -inf).
// Backward, fused in one kernel each with the same two mappings (one row-sum, then elementwise):
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
// Rows are visited by grid-stride loops (the grid is capped), so any row count launches.
// Deterministic: each row's sums are combined in a fixed order (no atomics).
#include "cuda/kernels/softmax.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/kernels/row_reduce.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

using namespace rowk;

constexpr int kWarpBlock = 128;                   // threads per block in the warp-per-row kernels
constexpr int kRowsPerWarpBlock = kWarpBlock / 32;
constexpr int kRowBlock = 512;                    // threads per block in the block-per-row kernels
constexpr int64_t kMaxWarpLen = 1024;             // longest row the warp kernels take (32 values per lane)
constexpr int64_t kMaxGrid = int64_t(1) << 20;    // grid cap; grid-stride loops do the rest

// ---- one warp per row, the row in registers ----------------------------------------------------

template <class T, bool kLog, int V, int kIters>
__global__ void __launch_bounds__(kWarpBlock)
    softmax_warp_forward(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int len) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t stride = int64_t(gridDim.x) * kRowsPerWarpBlock;
  // `row` is the same in all lanes of a warp, so whole warps leave the loop together (shuffles
  // need every lane).
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerWarpBlock + (threadIdx.x >> 5); row < rows; row += stride) {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    A v[kIters][V];
    A m = neg_inf<A>();
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int j = (it * 32 + lane) * V;
      if (j < len) {  // len % V == 0, so the whole pack is inside the row
        load_pack<T, V>(xr + j, v[it]);
#pragma unroll
        for (int i = 0; i < V; ++i) m = dev_max(m, v[it][i]);
      }
    }
    m = warp_max(m);
    A s = 0;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int j = (it * 32 + lane) * V;
      if (j < len) {
#pragma unroll
        for (int i = 0; i < V; ++i) {
          if constexpr (kLog) {
            v[it][i] -= m;  // x - max (NaN for an all -inf row, as on the CPU)
            s += dev_exp(v[it][i]);
          } else {
            v[it][i] = dev_exp(v[it][i] - m);
            s += v[it][i];
          }
        }
      }
    }
    s = warp_sum(s);
    const A post = kLog ? dev_log(s) : A(1) / s;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int j = (it * 32 + lane) * V;
      if (j < len) {
        A o[V];
#pragma unroll
        for (int i = 0; i < V; ++i) o[i] = kLog ? v[it][i] - post : v[it][i] * post;
        store_pack<T, V>(yr + j, o);
      }
    }
  }
}

template <class T, bool kLog, int V, int kIters>
__global__ void __launch_bounds__(kWarpBlock)
    softmax_warp_backward(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx, int64_t rows,
                          int len) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t stride = int64_t(gridDim.x) * kRowsPerWarpBlock;
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerWarpBlock + (threadIdx.x >> 5); row < rows; row += stride) {
    const int64_t base = row * len;
    A g[kIters][V], yv[kIters][V];
    A a = 0;  // sum(dy) for log_softmax, sum(dy * y) for softmax
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int j = (it * 32 + lane) * V;
      if (j < len) {
        load_pack<T, V>(dy + base + j, g[it]);
        load_pack<T, V>(y + base + j, yv[it]);
#pragma unroll
        for (int i = 0; i < V; ++i) a += kLog ? g[it][i] : g[it][i] * yv[it][i];
      }
    }
    a = warp_sum(a);
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int j = (it * 32 + lane) * V;
      if (j < len) {
        A o[V];
#pragma unroll
        for (int i = 0; i < V; ++i)
          o[i] = kLog ? g[it][i] - dev_exp(yv[it][i]) * a : yv[it][i] * (g[it][i] - a);
        store_pack<T, V>(dx + base + j, o);
      }
    }
  }
}

// ---- one block per row, online max and sum --------------------------------------------------------

template <class T, bool kLog, int V>
__global__ void __launch_bounds__(kRowBlock)
    softmax_block_forward(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t len) {
  using A = acc_t<T>;
  __shared__ A shm_m[kRowBlock / 32], shm_s[kRowBlock / 32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {  // the same rows for the whole block
    const T* xr = x + row * len;
    T* yr = y + row * len;
    MaxSum<A> st = MaxSum<A>::empty();
    for (int64_t j = int64_t(threadIdx.x) * V; j < len; j += int64_t(kRowBlock) * V) {
      A a[V];
      load_pack<T, V>(xr + j, a);
#pragma unroll
      for (int i = 0; i < V; ++i) st.add(a[i]);
    }
    st = block_combine<kRowBlock>(st, shm_m, shm_s);
    st.finish();
    const A m = st.m;
    const A post = kLog ? dev_log(st.s) : A(1) / st.s;
    for (int64_t j = int64_t(threadIdx.x) * V; j < len; j += int64_t(kRowBlock) * V) {
      A a[V];
      load_pack<T, V>(xr + j, a);
#pragma unroll
      for (int i = 0; i < V; ++i) a[i] = kLog ? (a[i] - m) - post : dev_exp(a[i] - m) * post;
      store_pack<T, V>(yr + j, a);
    }
  }
}

template <class T, bool kLog, int V>
__global__ void __launch_bounds__(kRowBlock)
    softmax_block_backward(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx, int64_t rows,
                           int64_t len) {
  using A = acc_t<T>;
  __shared__ A shm[kRowBlock / 32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * len;
    A a = 0;
    for (int64_t j = int64_t(threadIdx.x) * V; j < len; j += int64_t(kRowBlock) * V) {
      A g[V], yv[V];
      load_pack<T, V>(dy + base + j, g);
      load_pack<T, V>(y + base + j, yv);
#pragma unroll
      for (int i = 0; i < V; ++i) a += kLog ? g[i] : g[i] * yv[i];
    }
    a = block_sum<kRowBlock>(a, shm);
    for (int64_t j = int64_t(threadIdx.x) * V; j < len; j += int64_t(kRowBlock) * V) {
      A g[V], yv[V];
      load_pack<T, V>(dy + base + j, g);
      load_pack<T, V>(y + base + j, yv);
#pragma unroll
      for (int i = 0; i < V; ++i) g[i] = kLog ? g[i] - dev_exp(yv[i]) * a : yv[i] * (g[i] - a);
      store_pack<T, V>(dx + base + j, g);
    }
  }
}

// ---- launch ------------------------------------------------------------------------------------

unsigned warp_grid(int64_t rows) {
  return unsigned(std::min<int64_t>((rows + kRowsPerWarpBlock - 1) / kRowsPerWarpBlock, kMaxGrid));
}
unsigned block_grid(int64_t rows) { return unsigned(std::min<int64_t>(rows, kMaxGrid)); }

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The warp kernels with the smallest kIters (a power of two) whose kIters * 32 * V covers len.
template <class T, bool kLog, int V, int kIters>
void launch_warp_forward(const T* x, T* y, int64_t rows, int64_t len, cudaStream_t s) {
  if constexpr (kIters * V < 32) {
    if (len > int64_t(kIters) * 32 * V) return launch_warp_forward<T, kLog, V, kIters * 2>(x, y, rows, len, s);
  }
  softmax_warp_forward<T, kLog, V, kIters><<<warp_grid(rows), kWarpBlock, 0, s>>>(x, y, rows, int(len));
  RV_CUDA_CHECK_LAUNCH("softmax_warp_forward");
}

template <class T, bool kLog, int V, int kIters>
void launch_warp_backward(const T* dy, const T* y, T* dx, int64_t rows, int64_t len, cudaStream_t s) {
  if constexpr (kIters * V < 32) {
    if (len > int64_t(kIters) * 32 * V)
      return launch_warp_backward<T, kLog, V, kIters * 2>(dy, y, dx, rows, len, s);
  }
  softmax_warp_backward<T, kLog, V, kIters><<<warp_grid(rows), kWarpBlock, 0, s>>>(dy, y, dx, rows, int(len));
  RV_CUDA_CHECK_LAUNCH("softmax_warp_backward");
}

template <class T, bool kLog>
void forward_typed(const void* xv, void* yv, int64_t rows, int64_t len, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const bool vec = len % kVec == 0 && aligned16(x) && aligned16(y);
  if (len <= kMaxWarpLen) {
    // 32 lanes * kIters * V >= len holds for the largest kIters (kIters * V = 32) as len <= 1024.
    if (vec)
      launch_warp_forward<T, kLog, kVec, 1>(x, y, rows, len, s);
    else
      launch_warp_forward<T, kLog, 1, 1>(x, y, rows, len, s);
    return;
  }
  if (vec)
    softmax_block_forward<T, kLog, kVec><<<block_grid(rows), kRowBlock, 0, s>>>(x, y, rows, len);
  else
    softmax_block_forward<T, kLog, 1><<<block_grid(rows), kRowBlock, 0, s>>>(x, y, rows, len);
  RV_CUDA_CHECK_LAUNCH("softmax_block_forward");
}

template <class T, bool kLog>
void backward_typed(const void* dyv, const void* yv, void* dxv, int64_t rows, int64_t len, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);
  const T* dy = static_cast<const T*>(dyv);
  const T* y = static_cast<const T*>(yv);
  T* dx = static_cast<T*>(dxv);
  const bool vec = len % kVec == 0 && aligned16(dy) && aligned16(y) && aligned16(dx);
  if (len <= kMaxWarpLen) {
    if (vec)
      launch_warp_backward<T, kLog, kVec, 1>(dy, y, dx, rows, len, s);
    else
      launch_warp_backward<T, kLog, 1, 1>(dy, y, dx, rows, len, s);
    return;
  }
  if (vec)
    softmax_block_backward<T, kLog, kVec><<<block_grid(rows), kRowBlock, 0, s>>>(dy, y, dx, rows, len);
  else
    softmax_block_backward<T, kLog, 1><<<block_grid(rows), kRowBlock, 0, s>>>(dy, y, dx, rows, len);
  RV_CUDA_CHECK_LAUNCH("softmax_block_backward");
}

[[noreturn]] void throw_dtype(const char* what, DType dtype) {
  throw std::invalid_argument(std::string(what) + " takes float32, bfloat16 or float64, got " + dtype_name(dtype));
}

}  // namespace

void launch_softmax_forward(DType dtype, bool log, const void* x, void* y, int64_t rows, int64_t len,
                            cudaStream_t stream) {
  if (rows <= 0 || len <= 0) return;
  switch (dtype) {
    case DType::f32:
      return log ? forward_typed<float, true>(x, y, rows, len, stream)
                 : forward_typed<float, false>(x, y, rows, len, stream);
    case DType::bf16:
      return log ? forward_typed<__nv_bfloat16, true>(x, y, rows, len, stream)
                 : forward_typed<__nv_bfloat16, false>(x, y, rows, len, stream);
    case DType::f64:
      return log ? forward_typed<double, true>(x, y, rows, len, stream)
                 : forward_typed<double, false>(x, y, rows, len, stream);
    default: throw_dtype("launch_softmax_forward", dtype);
  }
}

void launch_softmax_backward(DType dtype, bool log, const void* dy, const void* y, void* dx, int64_t rows,
                             int64_t len, cudaStream_t stream) {
  if (rows <= 0 || len <= 0) return;
  switch (dtype) {
    case DType::f32:
      return log ? backward_typed<float, true>(dy, y, dx, rows, len, stream)
                 : backward_typed<float, false>(dy, y, dx, rows, len, stream);
    case DType::bf16:
      return log ? backward_typed<__nv_bfloat16, true>(dy, y, dx, rows, len, stream)
                 : backward_typed<__nv_bfloat16, false>(dy, y, dx, rows, len, stream);
    case DType::f64:
      return log ? backward_typed<double, true>(dy, y, dx, rows, len, stream)
                 : backward_typed<double, false>(dy, y, dx, rows, len, stream);
    default: throw_dtype("launch_softmax_backward", dtype);
  }
}

}  // namespace rv::cuda
