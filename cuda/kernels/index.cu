// index.cu: index_select forward and backward.
//
// Both kernels view a contiguous tensor as (outer, size(dim), inner) and launch one thread per
// OUTPUT element in a grid-stride loop, consecutive threads on consecutive `inner` elements, so
// the reads of one slice and the writes are coalesced when inner is large (Swin's bias table is
// selected along dim 0 with inner = NH heads; an embedding with inner = C channels).
//
//   forward   out[o, k, i] = x[o, idx[k], i]: a pure copy of raw elements (any 2/4/8-byte dtype).
//   backward  dx[o, s, i] = sum of g[o, k, i] over the k with idx[k] == s. Several k may point at
//             one s, and atomics would add them in a run-dependent order (different bits). So the
//             host buckets the positions by target once (counting sort, stable: `offsets`, `order`
//             as in CSR) and each thread owns one dx element and adds its bucket in ascending k.
//             Every element is written exactly once (0 for an empty bucket): no memset needed, and
//             the result is the same bits on every run, equal to the CPU's add order.
#include "cuda/kernels/index.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void index_select_kernel(T* __restrict__ out, const T* __restrict__ x, const int64_t* __restrict__ idx,
                                    int64_t S, int64_t K, int64_t inner, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, t = e / inner, k = t % K, o = t / K;
    out[e] = x[(o * S + idx[k]) * inner + i];
  }
}

template <class T>
__global__ void index_select_backward_kernel(T* __restrict__ dx, const T* __restrict__ g,
                                             const int64_t* __restrict__ offsets, const int64_t* __restrict__ order,
                                             int64_t S, int64_t K, int64_t inner, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, t = e / inner, s = t % S, o = t / S;
    const T* go = g + o * K * inner + i;
    T acc = T(0);
    for (int64_t j = offsets[s]; j < offsets[s + 1]; ++j) acc += go[order[j] * inner];
    dx[e] = acc;
  }
}

}  // namespace

void launch_index_select(int itemsize, void* out, const void* x, const int64_t* idx, int64_t outer, int64_t S,
                         int64_t K, int64_t inner, cudaStream_t stream) {
  const int64_t n = outer * K * inner;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  switch (itemsize) {
    case 2:
      index_select_kernel<<<grid, kThreads, 0, stream>>>(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(x),
                                                         idx, S, K, inner, n);
      break;
    case 4:
      index_select_kernel<<<grid, kThreads, 0, stream>>>(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(x),
                                                         idx, S, K, inner, n);
      break;
    case 8:
      index_select_kernel<<<grid, kThreads, 0, stream>>>(static_cast<uint64_t*>(out), static_cast<const uint64_t*>(x),
                                                         idx, S, K, inner, n);
      break;
    default:
      throw std::invalid_argument("index_select: launcher takes 2-, 4- or 8-byte elements, got " +
                                  std::to_string(itemsize));
  }
  RV_CUDA_CHECK_LAUNCH("index_select_kernel");
}

void launch_index_select_backward(DType dtype, void* dx, const void* g, const int64_t* offsets, const int64_t* order,
                                  int64_t outer, int64_t S, int64_t K, int64_t inner, cudaStream_t stream) {
  const int64_t n = outer * S * inner;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (dtype == DType::f32)
    index_select_backward_kernel<<<grid, kThreads, 0, stream>>>(static_cast<float*>(dx), static_cast<const float*>(g),
                                                                offsets, order, S, K, inner, n);
  else if (dtype == DType::f64)
    index_select_backward_kernel<<<grid, kThreads, 0, stream>>>(static_cast<double*>(dx),
                                                                static_cast<const double*>(g), offsets, order, S, K,
                                                                inner, n);
  else
    throw std::invalid_argument(std::string("index_select backward: launcher takes f32 or f64, got ") +
                                dtype_name(dtype));
  RV_CUDA_CHECK_LAUNCH("index_select_backward_kernel");
}

}  // namespace rv::cuda
