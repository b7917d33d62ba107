// cross_entropy.cu: cross entropy of (rows, K) logits against class indices, the softmax fused
// (log_softmax is never formed as a tensor).
//
// Forward, one row per team of threads: a warp for K <= 256 (4 rows per 128-thread block), a
// 256-thread block otherwise. One pass over the row keeps the online (max, sum of exp)
// (row_reduce.cuh) and the sum of the logits (double, for the label-smoothing term); the team
// combines them, and its first thread writes the row's log-sum-exp (saved for the backward), its
// loss and a valid flag (0 for an ignored row). The logits are read once.
// Reduction: one 1024-thread block sums the losses and the valid flags in double in a fixed
// order and writes the result in the logits' dtype and the mean's divisor (the count of
// non-ignored rows) on the device, so nothing is copied to the host and the result is the same
// bits on every run.
// Backward, one warp per row, one pass: dlogits = g_r (softmax - smoothed one-hot), the softmax
// recomputed as exp(x - lse) from the logits and the saved lse (cheaper than storing it: the
// same bytes read, none written in the forward).
// Loads are 128-bit (V = 16 / sizeof(T)) when K % V == 0 and the pointers are 16-byte aligned.
// Math in float for f32 / bf16 logits (bf16 widened at the load, rounded once at the store),
// double for f64; expf / logf, so results match the CPU within ~1e-6 relative.
#include "cuda/kernels/cross_entropy.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/kernels/row_reduce.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

using namespace rowk;

constexpr int64_t kMaxGrid = int64_t(1) << 20;  // grid cap; grid-stride loops do the rest
constexpr int kWarpBlock = 128;                 // threads per block when a warp takes a row
constexpr int kRowsPerWarpBlock = kWarpBlock / 32;
constexpr int kRowBlock = 256;                  // threads per block when a block takes a row
constexpr int64_t kMaxWarpK = 256;              // longest row a warp takes in the forward
constexpr int kReduceThreads = 1024;

__host__ __device__ constexpr int block_threads(int team) { return team == 32 ? kWarpBlock : team; }

// kTeam threads per row (32: a warp; else the whole block), V elements per load.
template <class T, int kTeam, int V>
__global__ void __launch_bounds__(block_threads(kTeam))
    ce_forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, int64_t rows, int64_t K,
                      int64_t ignore_index, double smoothing, acc_t<T>* __restrict__ loss, acc_t<T>* __restrict__ lse,
                      acc_t<T>* __restrict__ valid) {
  using A = acc_t<T>;
  constexpr int kTeams = block_threads(kTeam) / kTeam;  // rows per block at a time
  __shared__ A shm_m[kTeam / 32], shm_s[kTeam / 32];
  __shared__ double shm_d[kTeam / 32];
  const int lane = threadIdx.x % kTeam;
  const int64_t stride = int64_t(gridDim.x) * kTeams;
  // `row` is uniform over a team (a whole warp, or the whole block), so the shuffles and
  // __syncthreads in the team reductions are reached by every thread they wait for.
  for (int64_t row = int64_t(blockIdx.x) * kTeams + threadIdx.x / kTeam; row < rows; row += stride) {
    const T* xr = x + row * K;
    MaxSum<A> st = MaxSum<A>::empty();
    double sx = 0;  // sum of the logits, for the smoothing term
    for (int64_t j = int64_t(lane) * V; j < K; j += int64_t(kTeam) * V) {
      A a[V];
      load_pack<T, V>(xr + j, a);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        st.add(a[i]);
        sx += double(a[i]);
      }
    }
    if constexpr (kTeam == 32) {
      st = warp_combine(st);
      sx = warp_sum(sx);
    } else {
      st = block_combine<kTeam>(st, shm_m, shm_s);
      sx = block_sum<kTeam>(sx, shm_d);
    }
    st.finish();  // all -inf, or +inf / NaN anywhere: NaN, as the CPU
    if (lane == 0) {
      const A l = st.m + dev_log(st.s);
      lse[row] = l;
      const int64_t y = target[row];
      if (y == ignore_index) {
        loss[row] = A(0);
        valid[row] = A(0);
      } else if (y < 0 || y >= K) {
        loss[row] = quiet_nan<A>();
        valid[row] = A(1);
      } else {
        // (1 - s)(lse - x_y) + (s / K) sum_c (lse - x_c), the last sum as K lse - sum_c x_c.
        double v = (1.0 - smoothing) * double(l - to_acc(xr[y]));
        if (smoothing > 0) v += smoothing / double(K) * (double(K) * double(l) - sx);
        loss[row] = A(v);
        valid[row] = A(1);
      }
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    ce_reduce_kernel(const acc_t<T>* __restrict__ loss, const acc_t<T>* __restrict__ valid, int64_t rows, bool mean,
                     T* __restrict__ out, acc_t<T>* __restrict__ count) {
  using A = acc_t<T>;
  __shared__ double shm[kReduceThreads / 32];
  double sl = 0, sv = 0;
  for (int64_t i = threadIdx.x; i < rows; i += kReduceThreads) {
    sl += double(loss[i]);
    sv += double(valid[i]);
  }
  sl = block_sum<kReduceThreads>(sl, shm);
  sv = block_sum<kReduceThreads>(sv, shm);  // block_sum syncs before reusing shm
  if (threadIdx.x == 0) {
    *count = A(sv);
    *out = from_acc<T>(A(mean ? sl / sv : sl));
  }
}

template <class T>
__global__ void ce_cast_kernel(const acc_t<T>* __restrict__ loss, T* __restrict__ out, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_acc<T>(loss[i]);
}

template <class T, int V>
__global__ void __launch_bounds__(kWarpBlock)
    ce_backward_kernel(const T* __restrict__ grad, bool grad_per_row, const acc_t<T>* __restrict__ count,
                       const T* __restrict__ x, const int64_t* __restrict__ target, const acc_t<T>* __restrict__ lse,
                       int64_t rows, int64_t K, int64_t ignore_index, acc_t<T> one_minus_s, acc_t<T> smooth,
                       acc_t<T> qsum, T* __restrict__ dx) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t stride = int64_t(gridDim.x) * kRowsPerWarpBlock;
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerWarpBlock + (threadIdx.x >> 5); row < rows; row += stride) {
    const int64_t y = target[row];
    const bool ignored = y == ignore_index;
    const bool bad = !ignored && (y < 0 || y >= K);
    // The row's share of the incoming gradient, as the CPU's GradScale: g[r] (none), g (sum),
    // g / count (mean, divided in double).
    A g = grad_per_row ? to_acc(grad[row]) : to_acc(grad[0]);
    if (!grad_per_row && count) g = A(double(g) / double(*count));
    const A l = lse[row];
    const T* xr = x + row * K;
    T* dr = dx + row * K;
    for (int64_t j = int64_t(lane) * V; j < K; j += int64_t(32) * V) {
      A a[V];
      load_pack<T, V>(xr + j, a);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        A d;
        if (ignored) {
          d = A(0);
        } else if (bad) {
          d = quiet_nan<A>();
        } else {
          d = g * (dev_exp(a[i] - l) * qsum - smooth);
          if (j + i == y) d -= g * one_minus_s;  // the one-hot part of the target
        }
        a[i] = d;
      }
      store_pack<T, V>(dr + j, a);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned warp_grid(int64_t rows) {
  return unsigned(std::min<int64_t>((rows + kRowsPerWarpBlock - 1) / kRowsPerWarpBlock, kMaxGrid));
}

template <class T>
void forward_typed(const void* xv, const int64_t* target, int64_t rows, int64_t K, int64_t ignore_index,
                   double smoothing, void* lossv, void* lsev, void* validv, cudaStream_t s) {
  using A = acc_t<T>;
  constexpr int kVec = 16 / sizeof(T);
  const T* x = static_cast<const T*>(xv);
  A* loss = static_cast<A*>(lossv);
  A* lse = static_cast<A*>(lsev);
  A* valid = static_cast<A*>(validv);
  const bool vec = K % kVec == 0 && aligned16(x);
  if (K <= kMaxWarpK) {
    if (vec)
      ce_forward_kernel<T, 32, kVec><<<warp_grid(rows), kWarpBlock, 0, s>>>(x, target, rows, K, ignore_index, smoothing,
                                                                            loss, lse, valid);
    else
      ce_forward_kernel<T, 32, 1><<<warp_grid(rows), kWarpBlock, 0, s>>>(x, target, rows, K, ignore_index, smoothing,
                                                                         loss, lse, valid);
  } else {
    const unsigned grid = unsigned(std::min<int64_t>(rows, kMaxGrid));
    if (vec)
      ce_forward_kernel<T, kRowBlock, kVec><<<grid, kRowBlock, 0, s>>>(x, target, rows, K, ignore_index, smoothing,
                                                                       loss, lse, valid);
    else
      ce_forward_kernel<T, kRowBlock, 1><<<grid, kRowBlock, 0, s>>>(x, target, rows, K, ignore_index, smoothing, loss,
                                                                    lse, valid);
  }
  RV_CUDA_CHECK_LAUNCH("ce_forward_kernel");
}

template <class T>
void reduce_typed(const void* loss, const void* valid, int64_t rows, bool mean, void* out, void* count,
                  cudaStream_t s) {
  using A = acc_t<T>;
  ce_reduce_kernel<T><<<1, kReduceThreads, 0, s>>>(static_cast<const A*>(loss), static_cast<const A*>(valid), rows,
                                                   mean, static_cast<T*>(out), static_cast<A*>(count));
  RV_CUDA_CHECK_LAUNCH("ce_reduce_kernel");
}

template <class T>
void cast_typed(const void* loss, void* out, int64_t rows, cudaStream_t s) {
  if (rows <= 0) return;
  const unsigned grid = unsigned(std::min<int64_t>((rows + 255) / 256, kMaxGrid));
  ce_cast_kernel<T><<<grid, 256, 0, s>>>(static_cast<const acc_t<T>*>(loss), static_cast<T*>(out), rows);
  RV_CUDA_CHECK_LAUNCH("ce_cast_kernel");
}

template <class T>
void backward_typed(const void* grad, bool per_row, const void* count, const void* xv, const int64_t* target,
                    const void* lse, int64_t rows, int64_t K, int64_t ignore_index, double smoothing, void* dxv,
                    cudaStream_t s) {
  using A = acc_t<T>;
  constexpr int kVec = 16 / sizeof(T);
  const T* x = static_cast<const T*>(xv);
  T* dx = static_cast<T*>(dxv);
  // The CPU's constants: qsum = sum_c q_c = (1 - s) + (s / K) K, in double, then rounded.
  const double sK = smoothing / double(K);
  const A one_minus_s = A(1.0 - smoothing), smooth = A(sK), qsum = A((1.0 - smoothing) + sK * double(K));
  const T* g = static_cast<const T*>(grad);
  const A* c = static_cast<const A*>(count);
  const A* l = static_cast<const A*>(lse);
  if (K % kVec == 0 && aligned16(x) && aligned16(dx))
    ce_backward_kernel<T, kVec><<<warp_grid(rows), kWarpBlock, 0, s>>>(g, per_row, c, x, target, l, rows, K,
                                                                       ignore_index, one_minus_s, smooth, qsum, dx);
  else
    ce_backward_kernel<T, 1><<<warp_grid(rows), kWarpBlock, 0, s>>>(g, per_row, c, x, target, l, rows, K,
                                                                    ignore_index, one_minus_s, smooth, qsum, dx);
  RV_CUDA_CHECK_LAUNCH("ce_backward_kernel");
}

[[noreturn]] void throw_dtype(const char* what, DType dtype) {
  throw std::invalid_argument(std::string(what) + " takes float32, bfloat16 or float64 logits, got " +
                              dtype_name(dtype));
}

}  // namespace

void launch_cross_entropy_forward(DType dtype, const void* logits, const int64_t* target, int64_t rows, int64_t K,
                                  int64_t ignore_index, double smoothing, void* loss, void* lse, void* valid,
                                  cudaStream_t stream) {
  if (rows <= 0) return;
  if (K <= 0) throw std::invalid_argument("launch_cross_entropy_forward: rows need at least one class");
  switch (dtype) {
    case DType::f32:
      return forward_typed<float>(logits, target, rows, K, ignore_index, smoothing, loss, lse, valid, stream);
    case DType::bf16:
      return forward_typed<__nv_bfloat16>(logits, target, rows, K, ignore_index, smoothing, loss, lse, valid, stream);
    case DType::f64:
      return forward_typed<double>(logits, target, rows, K, ignore_index, smoothing, loss, lse, valid, stream);
    default: throw_dtype("launch_cross_entropy_forward", dtype);
  }
}

void launch_cross_entropy_reduce(DType dtype, const void* loss, const void* valid, int64_t rows, bool mean,
                                 void* out, void* count, cudaStream_t stream) {
  switch (dtype) {
    case DType::f32: return reduce_typed<float>(loss, valid, rows, mean, out, count, stream);
    case DType::bf16: return reduce_typed<__nv_bfloat16>(loss, valid, rows, mean, out, count, stream);
    case DType::f64: return reduce_typed<double>(loss, valid, rows, mean, out, count, stream);
    default: throw_dtype("launch_cross_entropy_reduce", dtype);
  }
}

void launch_cross_entropy_cast(DType dtype, const void* loss, void* out, int64_t rows, cudaStream_t stream) {
  switch (dtype) {
    case DType::f32: return cast_typed<float>(loss, out, rows, stream);
    case DType::bf16: return cast_typed<__nv_bfloat16>(loss, out, rows, stream);
    case DType::f64: return cast_typed<double>(loss, out, rows, stream);
    default: throw_dtype("launch_cross_entropy_cast", dtype);
  }
}

void launch_cross_entropy_backward(DType dtype, const void* grad, bool grad_per_row, const void* count,
                                   const void* logits, const int64_t* target, const void* lse, int64_t rows, int64_t K,
                                   int64_t ignore_index, double smoothing, void* dlogits, cudaStream_t stream) {
  if (rows <= 0 || K <= 0) return;
  switch (dtype) {
    case DType::f32:
      return backward_typed<float>(grad, grad_per_row, count, logits, target, lse, rows, K, ignore_index, smoothing,
                                   dlogits, stream);
    case DType::bf16:
      return backward_typed<__nv_bfloat16>(grad, grad_per_row, count, logits, target, lse, rows, K, ignore_index,
                                           smoothing, dlogits, stream);
    case DType::f64:
      return backward_typed<double>(grad, grad_per_row, count, logits, target, lse, rows, K, ignore_index, smoothing,
                                    dlogits, stream);
    default: throw_dtype("launch_cross_entropy_backward", dtype);
  }
}

}  // namespace rv::cuda
