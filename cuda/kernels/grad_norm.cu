// grad_norm.cu: the total L2 norm of all gradients, and the clip_grad_norm_ scaling, each one
// multi-tensor launch (multi_tensor.cuh: one block per 16384-element chunk of any tensor).
//
// Norm, in two deterministic stages: (1) block b squares its chunk's elements in double (each
// thread a strided share, then warp shuffles and shared memory fold the 256 sums in a fixed
// tree) and writes partials[b]; (2) one block adds the partials the same way and writes
// sqrt(sum) as a double. The chunks depend on the tensor sizes only, so the bits do not change
// between runs; no atomics. Reads 4 bytes per f32 element, once.
//
// Scale: every block reads the norm from device memory, computes coef = max_norm / (norm +
// 1e-6) as the CPU does (in double), and multiplies its chunk by float(coef) only when coef < 1
// or is NaN. So clipping needs no host round trip; the caller copies the norm to the host
// afterwards when it wants the value.
#include "cuda/kernels/grad_norm.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/kernels/exact_math.cuh"
#include "cuda/kernels/multi_tensor.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

using multi_tensor::kChunk;
using multi_tensor::kThreads;

// Sum of v over the block in a fixed order; valid in thread 0.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  double s = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kThreads / 32; ++w) s += warp_sums[w];
  return s;
}

template <class T>
__global__ void sum_squares_kernel(const NormEntry* __restrict__ entries, int count, double* __restrict__ partials) {
  const NormEntry& e = entries[multi_tensor::find_entry(entries, count, blockIdx.x)];
  const int64_t begin = (int64_t(blockIdx.x) - e.chunk_begin) * kChunk;
  const int64_t end = min(e.numel, begin + kChunk);
  const T* __restrict__ x = static_cast<const T*>(e.data);
  double acc = 0.0;
  for (int64_t k = begin + threadIdx.x; k < end; k += kThreads) {
    const double v = double(x[k]);
    acc = rn::add(acc, rn::mul(v, v));
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void norm_final_kernel(const double* __restrict__ partials, int64_t count, double* __restrict__ norm) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *norm = sqrt(acc);
}

template <class T>
__global__ void scale_by_norm_kernel(const NormEntry* __restrict__ entries, int count, const double* __restrict__ norm,
                                     double max_norm) {
  const double coef = max_norm / (*norm + 1e-6);
  if (!(coef < 1.0 || isnan(coef))) return;  // uniform over the grid: nothing to clip
  const NormEntry& e = entries[multi_tensor::find_entry(entries, count, blockIdx.x)];
  const int64_t begin = (int64_t(blockIdx.x) - e.chunk_begin) * kChunk;
  const int64_t end = min(e.numel, begin + kChunk);
  T* __restrict__ x = static_cast<T*>(e.data);
  const T c = T(coef);
  for (int64_t k = begin + threadIdx.x; k < end; k += kThreads) x[k] = rn::mul(x[k], c);
}

void check_dtype(DType dtype, const char* what) {
  if (dtype != DType::f32 && dtype != DType::f64)
    throw std::invalid_argument(std::string("clip_grad_norm_: ") + what + " takes f32 or f64, got " +
                                dtype_name(dtype));
}

}  // namespace

size_t norm_table_bytes(size_t count) { return count * sizeof(NormEntry); }

int64_t norm_partials(const std::vector<NormEntry>& entries) {
  std::vector<NormEntry> copy = entries;
  return std::max<int64_t>(1, multi_tensor::assign_chunks(copy, "clip_grad_norm_"));
}

void launch_l2_norm(std::vector<NormEntry> entries, DType dtype, void* table, double* partials, double* norm,
                    cudaStream_t stream) {
  check_dtype(dtype, "launch_l2_norm");
  const int64_t chunks = entries.empty() ? 0 : multi_tensor::assign_chunks(entries, "clip_grad_norm_");
  if (chunks > 0) {
    multi_tensor::upload(table, entries, stream);
    const auto* t = static_cast<const NormEntry*>(table);
    if (dtype == DType::f32)
      sum_squares_kernel<float><<<unsigned(chunks), kThreads, 0, stream>>>(t, int(entries.size()), partials);
    else
      sum_squares_kernel<double><<<unsigned(chunks), kThreads, 0, stream>>>(t, int(entries.size()), partials);
    RV_CUDA_CHECK_LAUNCH("sum_squares_kernel");
  }
  // With no elements at all the final stage sums zero partials: the norm is 0.
  norm_final_kernel<<<1, kThreads, 0, stream>>>(partials, chunks, norm);
  RV_CUDA_CHECK_LAUNCH("norm_final_kernel");
}

void launch_scale_by_norm(std::vector<NormEntry> entries, DType dtype, void* table, const double* norm,
                          double max_norm, cudaStream_t stream) {
  check_dtype(dtype, "launch_scale_by_norm");
  if (entries.empty()) return;
  const int64_t chunks = multi_tensor::assign_chunks(entries, "clip_grad_norm_");
  if (chunks == 0) return;
  multi_tensor::upload(table, entries, stream);
  const auto* t = static_cast<const NormEntry*>(table);
  if (dtype == DType::f32)
    scale_by_norm_kernel<float><<<unsigned(chunks), kThreads, 0, stream>>>(t, int(entries.size()), norm, max_norm);
  else
    scale_by_norm_kernel<double><<<unsigned(chunks), kThreads, 0, stream>>>(t, int(entries.size()), norm, max_norm);
  RV_CUDA_CHECK_LAUNCH("scale_by_norm_kernel");
}

}  // namespace rv::cuda
