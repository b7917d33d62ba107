// take.cu: the two element-moving kernels behind gather, scatter_add and index_add.
//
// The host (engine/ops/index_device.cpp) has already turned the op's index into flat offsets,
// so the device work is pure data movement:
//   take          one thread per output element reads src at its offset (grid-stride). The
//                 element is moved as raw bytes of its size, so every dtype shares one kernel.
//   scatter-add   written as a gather: the host buckets the positions by target (a stable
//                 counting sort, backend::bucket_by_target), and one thread per OUTPUT element
//                 starts from x's value and adds the sources of its bucket in ascending position
//                 order. One writer per element and the CPU's order: no atomics, and the same
//                 bits on every run.
// Reads of src are scattered by nature (as the index says); writes coalesce.
#include "cuda/kernels/take.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class U>
__global__ void take_kernel(U* __restrict__ out, const U* __restrict__ src, const int64_t* __restrict__ offsets,
                            int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = src[offsets[i]];
}

template <class T>
__global__ void scatter_add_buckets_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ src,
                                           const int64_t* __restrict__ off, const int64_t* __restrict__ order,
                                           int64_t n) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    T acc = x[t];
    for (int64_t j = off[t]; j < off[t + 1]; ++j) acc += src[order[j]];
    out[t] = acc;
  }
}

template <class U>
void take_as(void* out, const void* src, const int64_t* offsets, int64_t n, cudaStream_t stream) {
  take_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<U*>(out), static_cast<const U*>(src),
                                                              offsets, n);
  RV_CUDA_CHECK_LAUNCH("take_kernel");
}

template <class T>
void scatter_as(void* out, const void* x, const void* src, const int64_t* off, const int64_t* order, int64_t n,
                cudaStream_t stream) {
  scatter_add_buckets_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<T*>(out), static_cast<const T*>(x), static_cast<const T*>(src), off, order, n);
  RV_CUDA_CHECK_LAUNCH("scatter_add_buckets_kernel");
}

}  // namespace

void launch_take(int itemsize, void* out, const void* src, const int64_t* offsets, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  switch (itemsize) {
    case 1: take_as<uint8_t>(out, src, offsets, n, stream); break;
    case 2: take_as<uint16_t>(out, src, offsets, n, stream); break;
    case 4: take_as<uint32_t>(out, src, offsets, n, stream); break;
    case 8: take_as<uint64_t>(out, src, offsets, n, stream); break;
    default: throw std::invalid_argument("gather: launcher takes elements of 1, 2, 4 or 8 bytes, got " +
                                         std::to_string(itemsize));
  }
}

void launch_scatter_add_buckets(DType dtype, void* out, const void* x, const void* src, const int64_t* off,
                                const int64_t* order, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (dtype == DType::f32) scatter_as<float>(out, x, src, off, order, n, stream);
  else if (dtype == DType::f64) scatter_as<double>(out, x, src, off, order, n, stream);
  else throw std::invalid_argument(std::string("scatter_add: launcher takes f32 or f64, got ") + dtype_name(dtype));
}

}  // namespace rv::cuda
