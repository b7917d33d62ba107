// convert.h: launcher for dtype conversion on a CUDA device (Tensor::to(DType), copy_ between
// dtypes): dst[i] = convert(src[i]) for any pair of the eight dtypes.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rv::cuda {

// dst (dst_dtype, element strides dst_strides) = src (src_dtype, element strides src_strides,
// stride 0 in broadcast dims), both read as `shape`. Rounds exactly as the CPU's scalar_cast.
void launch_convert(DType dst_dtype, void* dst, const std::vector<int64_t>& dst_strides, DType src_dtype,
                    const void* src, const std::vector<int64_t>& src_strides, const std::vector<int64_t>& shape,
                    cudaStream_t stream);

}  // namespace rv::cuda
