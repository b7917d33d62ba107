// strided_copy.h: launchers for a strided copy (any strides -> any strides, same dtype; used by
// contiguous(), clone() and copy_()) and a strided fill (fill_, ones, full).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace rv::cuda {

// dst[i] = src[i] over `shape`, element strides given per operand (src may have stride 0 in
// broadcast dims). Elements are moved as raw words of `itemsize` bytes (1, 2, 4 or 8).
void launch_strided_copy(void* dst, const std::vector<int64_t>& dst_strides, const void* src,
                         const std::vector<int64_t>& src_strides, const std::vector<int64_t>& shape, size_t itemsize,
                         cudaStream_t stream);

// Every element of dst over `shape` set to the `itemsize`-byte pattern in the low bytes of `bits`.
void launch_strided_fill(void* dst, const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape,
                         size_t itemsize, uint64_t bits, cudaStream_t stream);

}  // namespace rv::cuda
