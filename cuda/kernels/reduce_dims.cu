// reduce_dims.cu: the sum over any subset of dims, deterministic, accumulated in double.
//
// The host plan (plan_sum_dims) drops size-1 dims, merges contiguous neighbours, and splits the
// dims into kept ones (the output) and reduced ones. Two kernels, chosen by the memory layout:
//
//   group per output ("rows", e.g. a sum over the last dim, or over everything): when a reduced
//     dim has stride 1, the reduced elements of one output are contiguous, so a group of 32
//     threads (one warp; 256 = the whole block when there are >= 1024 elements per output) walks
//     them with consecutive lanes on consecutive addresses, each lane keeps a double partial,
//     and the group folds them with warp shuffles (and shared memory across the block's warps).
//
//   thread per output ("columns", e.g. the bias gradient: a (rows, C) tensor summed over rows):
//     when a kept dim has stride 1, consecutive threads take consecutive outputs, so each step
//     of their loops over the reduced elements is one coalesced row read. Few outputs and many
//     rows would leave the GPU idle, so the reduced elements are cut into `chunks` (a function
//     of the shape only), each chunk writes a double partial per output (blockIdx.y = chunk), and
//     a second kernel adds each output's partials in chunk order.
//
// No atomics: every output is summed in an order that depends on the shape and strides alone,
// so the bits are the same on every run and every GPU.
#include "cuda/kernels/reduce_dims.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/kernels/exact_math.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxChunks = 1024;

// Sizes and strides of up to kMaxDims merged dims, passed by value to the kernels.
struct Dims {
  int nd = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};

  // Element offset of the row-major linear index `k` over these dims.
  __device__ __forceinline__ int64_t offset(int64_t k) const {
    if (nd == 1) return k * stride[0];  // the common case: one division-free dim
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      off += (k % size[d]) * stride[d];
      k /= size[d];
    }
    return off;
  }
};

Dims to_dims(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  if (sizes.size() > size_t(kMaxDims))
    throw std::invalid_argument("sum: more than " + std::to_string(kMaxDims) +
                                " non-mergeable dims are not supported on cuda");
  Dims d;
  d.nd = int(sizes.size());
  for (int i = 0; i < d.nd; ++i) d.size[i] = sizes[size_t(i)], d.stride[i] = strides[size_t(i)];
  return d;
}

// TPO threads (32 or 256) sum the reduced elements of one output.
template <class S, int TPO>
__global__ void sum_rows_kernel(S* __restrict__ out, const S* __restrict__ x, int64_t nout, int64_t nred, Dims kept,
                                Dims red) {
  static_assert(TPO == 32 || TPO == kThreads, "a group is one warp or the whole block");
  const int64_t o = int64_t(blockIdx.x) * (kThreads / TPO) + threadIdx.x / TPO;
  const int lane = int(threadIdx.x % TPO);
  // TPO == 32: the guard is uniform per warp (no block barrier follows). TPO == 256: the grid
  // has exactly nout blocks, so it never fires and every thread reaches __syncthreads.
  if (o >= nout) return;
  const S* base = x + kept.offset(o);
  double acc = 0.0;
  for (int64_t k = lane; k < nred; k += TPO) acc += double(load_c(base + red.offset(k)));
  for (int w = 16; w > 0; w >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, w);
  if constexpr (TPO == kThreads) {
    __shared__ double warp_sums[kThreads / 32];
    if (lane % 32 == 0) warp_sums[lane / 32] = acc;
    __syncthreads();
    if (lane == 0) {
      double s = 0.0;
      for (int w = 0; w < kThreads / 32; ++w) s += warp_sums[w];
      store_c(out + o, s);
    }
  } else {
    if (lane == 0) store_c(out + o, acc);
  }
}

// Thread per output; blockIdx.y = chunk c sums reduced elements [c * per, min(nred, (c+1) * per)).
// With one chunk it writes the output, else its partial (partials[c * nout + o]).
template <class S>
__global__ void sum_columns_kernel(S* __restrict__ out, double* __restrict__ partials, const S* __restrict__ x,
                                   int64_t nout, int64_t nred, int64_t per, Dims kept, Dims red) {
  const int64_t o = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (o >= nout) return;
  const int64_t c = blockIdx.y;
  const int64_t k0 = c * per, k1 = min(nred, k0 + per);
  const S* base = x + kept.offset(o);
  double acc = 0.0;
  for (int64_t k = k0; k < k1; ++k) acc += double(load_c(base + red.offset(k)));
  if (gridDim.y == 1)
    store_c(out + o, acc);
  else
    partials[c * nout + o] = acc;
}

template <class S>
__global__ void sum_chunks_kernel(S* __restrict__ out, const double* __restrict__ partials, int64_t nout,
                                  int64_t chunks) {
  const int64_t o = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (o >= nout) return;
  double acc = 0.0;
  for (int64_t c = 0; c < chunks; ++c) acc += partials[c * nout + o];
  store_c(out + o, acc);
}

template <class S>
void launch_typed(const SumDimsPlan& p, S* out, const S* x, double* scratch, cudaStream_t stream) {
  const int64_t nout = p.out_numel, nred = p.red_numel;
  if (nout == 0) return;
  const Dims kept = to_dims(p.kept_sizes, p.kept_strides), red = to_dims(p.red_sizes, p.red_strides);
  if (!p.columns) {
    if (nred >= 1024) {
      sum_rows_kernel<S, kThreads><<<unsigned(nout), kThreads, 0, stream>>>(out, x, nout, nred, kept, red);
    } else {
      const int64_t per_block = kThreads / 32;
      sum_rows_kernel<S, 32><<<unsigned((nout + per_block - 1) / per_block), kThreads, 0, stream>>>(out, x, nout,
                                                                                                      nred, kept, red);
    }
    RV_CUDA_CHECK_LAUNCH("sum_rows_kernel");
    return;
  }
  const int64_t per = (nred + p.chunks - 1) / std::max<int64_t>(1, p.chunks);
  const dim3 grid(unsigned((nout + kThreads - 1) / kThreads), unsigned(p.chunks));
  sum_columns_kernel<S><<<grid, kThreads, 0, stream>>>(out, scratch, x, nout, nred, per, kept, red);
  RV_CUDA_CHECK_LAUNCH("sum_columns_kernel");
  if (p.chunks > 1) {
    sum_chunks_kernel<S><<<unsigned((nout + kThreads - 1) / kThreads), kThreads, 0, stream>>>(out, scratch, nout,
                                                                                              p.chunks);
    RV_CUDA_CHECK_LAUNCH("sum_chunks_kernel");
  }
}

// Drops size-1 dims and merges dim i into the previous kept one when contiguous with it.
void push_merged(std::vector<int64_t>& sizes, std::vector<int64_t>& strides, int64_t size, int64_t stride) {
  if (!sizes.empty() && strides.back() == size * stride) {
    sizes.back() *= size;
    strides.back() = stride;
    return;
  }
  sizes.push_back(size);
  strides.push_back(stride);
}

}  // namespace

SumDimsPlan plan_sum_dims(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                          const std::vector<bool>& reduced) {
  SumDimsPlan p;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) p.red_numel *= shape[d];
    else p.out_numel *= shape[d];
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (reduced[d]) push_merged(p.red_sizes, p.red_strides, shape[d], strides[d]);
    else push_merged(p.kept_sizes, p.kept_strides, shape[d], strides[d]);
  }
  const bool red_unit = std::find(p.red_strides.begin(), p.red_strides.end(), 1) != p.red_strides.end();
  const bool kept_unit = std::find(p.kept_strides.begin(), p.kept_strides.end(), 1) != p.kept_strides.end();
  // A stride-1 reduced dim: lanes read along it (rows). Else a stride-1 kept dim: threads read
  // along it (columns). Neither (transposed or stepped views): columns when there are many
  // outputs to spread over threads, rows otherwise.
  p.columns = !red_unit && (kept_unit || p.out_numel >= 4096);
  if (p.columns) {
    // Enough (output, chunk) threads to fill a GPU (~2^18), at least 16 elements per chunk.
    const int64_t want = ((int64_t(1) << 18) + p.out_numel - 1) / std::max<int64_t>(1, p.out_numel);
    p.chunks = std::clamp<int64_t>(std::min(want, p.red_numel / 16), 1, kMaxChunks);
  }
  return p;
}

void launch_sum_dims(const SumDimsPlan& plan, DType dtype, void* out, const void* x, double* scratch,
                     cudaStream_t stream) {
  if (dtype == DType::f32)
    return launch_typed(plan, static_cast<float*>(out), static_cast<const float*>(x), scratch, stream);
  if (dtype == DType::f64)
    return launch_typed(plan, static_cast<double*>(out), static_cast<const double*>(x), scratch, stream);
  if (dtype == DType::bf16)
    return launch_typed(plan, static_cast<__nv_bfloat16*>(out), static_cast<const __nv_bfloat16*>(x), scratch,
                        stream);
  throw std::invalid_argument(std::string("sum: launch_sum_dims takes f32, f64 or bf16, got ") + dtype_name(dtype));
}

}  // namespace rv::cuda
