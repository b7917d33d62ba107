// reduce_sum.cu: sum of all elements, in two deterministic stages.
//
// Stage 1: P blocks (P depends on n only, never on the GPU) each sum a grid-strided share of
// the elements in double, reduce their 256 threads with warp shuffles and shared memory, and
// write one partial. Stage 2: one block sums the P partials the same way and writes the result
// in the input's dtype. No atomics, so the result is the same bit for bit on every run; the
// double accumulator keeps f32 sums as accurate as the CPU's (which also accumulates in double).
#include "cuda/kernels/reduce_sum.h"

#include <stdexcept>
#include <string>

#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;
constexpr int64_t kPerBlock = 8 * kThreads;  // elements per block before another block is worth it

// Sum of `v` over the block; the result is valid in thread 0.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  return v;
}

template <class T>
__global__ void sum_partials_kernel(const T* __restrict__ x, int64_t n, double* __restrict__ partials) {
  double acc = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads)
    acc += double(x[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

template <class T>
__global__ void sum_final_kernel(const double* __restrict__ partials, int count, T* __restrict__ out) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = T(acc);
}

template <class T>
void launch_typed(const T* x, int64_t n, T* out, double* partials, cudaStream_t s) {
  const int p = sum_all_partials(n);
  sum_partials_kernel<T><<<p, kThreads, 0, s>>>(x, n, partials);
  RV_CUDA_CHECK_LAUNCH("sum_partials_kernel");
  sum_final_kernel<T><<<1, kThreads, 0, s>>>(partials, p, out);
  RV_CUDA_CHECK_LAUNCH("sum_final_kernel");
}

}  // namespace

int sum_all_partials(int64_t n) {
  const int64_t p = (n + kPerBlock - 1) / kPerBlock;
  return int(p < 1 ? 1 : (p > kMaxPartials ? kMaxPartials : p));
}

void launch_sum_all(DType dtype, const void* x, int64_t n, void* out, double* partials, cudaStream_t stream) {
  if (dtype == DType::f32)
    return launch_typed(static_cast<const float*>(x), n, static_cast<float*>(out), partials, stream);
  if (dtype == DType::f64)
    return launch_typed(static_cast<const double*>(x), n, static_cast<double*>(out), partials, stream);
  throw std::invalid_argument(std::string("sum: launch_sum_all takes f32 or f64, got ") + dtype_name(dtype));
}

}  // namespace rv::cuda
