// strided_copy.cu: the copy and fill kernels behind contiguous(), clone(), copy_() and fill_().
//
// A copy does no arithmetic, so the element type is only a word size: one kernel per size
// (1, 2, 4, 8 bytes) serves every dtype. One thread per destination element; the destination
// index is decomposed with the merged dims of nd_index.cuh. Reads of a transposed source are
// uncoalesced here; a tiled transpose through shared memory is the known next step.
#include "cuda/kernels/strided_copy.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class W>
__global__ void strided_copy_kernel(W* __restrict__ dst, const W* __restrict__ src, int64_t n, NdIndex<2> ix) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = src[off[1]];
  }
}

template <class W>
__global__ void strided_fill_kernel(W* __restrict__ dst, int64_t n, NdIndex<1> ix, W value) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = value;
  }
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

template <class W>
void copy_words(void* dst, const void* src, int64_t n, const NdIndex<2>& ix, cudaStream_t s) {
  strided_copy_kernel<W><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<W*>(dst), static_cast<const W*>(src),
                                                                     n, ix);
  RV_CUDA_CHECK_LAUNCH("strided_copy_kernel");
}

template <class W>
void fill_words(void* dst, int64_t n, const NdIndex<1>& ix, uint64_t bits, cudaStream_t s) {
  strided_fill_kernel<W><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<W*>(dst), n, ix, W(bits));
  RV_CUDA_CHECK_LAUNCH("strided_fill_kernel");
}

}  // namespace

void launch_strided_copy(void* dst, const std::vector<int64_t>& dst_strides, const void* src,
                         const std::vector<int64_t>& src_strides, const std::vector<int64_t>& shape, size_t itemsize,
                         cudaStream_t stream) {
  const int64_t n = numel_of(shape);
  if (n == 0) return;
  const std::vector<int64_t>* strides[2] = {&dst_strides, &src_strides};
  const NdIndex<2> ix = make_nd_index<2>(shape, strides, "copy");
  switch (itemsize) {
    case 1: return copy_words<uint8_t>(dst, src, n, ix, stream);
    case 2: return copy_words<uint16_t>(dst, src, n, ix, stream);
    case 4: return copy_words<uint32_t>(dst, src, n, ix, stream);
    case 8: return copy_words<uint64_t>(dst, src, n, ix, stream);
  }
  throw std::invalid_argument("copy: element size " + std::to_string(itemsize) + " is not 1, 2, 4 or 8 bytes");
}

void launch_strided_fill(void* dst, const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape,
                         size_t itemsize, uint64_t bits, cudaStream_t stream) {
  const int64_t n = numel_of(shape);
  if (n == 0) return;
  const std::vector<int64_t>* strides[1] = {&dst_strides};
  const NdIndex<1> ix = make_nd_index<1>(shape, strides, "fill_");
  switch (itemsize) {
    case 1: return fill_words<uint8_t>(dst, n, ix, bits, stream);
    case 2: return fill_words<uint16_t>(dst, n, ix, bits, stream);
    case 4: return fill_words<uint32_t>(dst, n, ix, bits, stream);
    case 8: return fill_words<uint64_t>(dst, n, ix, bits, stream);
  }
  throw std::invalid_argument("fill_: element size " + std::to_string(itemsize) + " is not 1, 2, 4 or 8 bytes");
}

}  // namespace rv::cuda
