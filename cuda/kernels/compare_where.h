// compare_where.h: launchers for the comparisons (eq, ne, lt, le, gt, ge -> bool) and the
// select out = cond ? a : b (where, masked_fill) on a CUDA device, with broadcasting.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/dtype.h"

namespace rv::cuda {

// out (bool, contiguous with `shape`) = a op b; a and b: `dtype` (f32, f64 or i64), read through
// their broadcast element strides for `shape`.
void launch_compare(backend::DeviceBackend::CompareOp op, DType dtype, bool* out, const void* a,
                    const std::vector<int64_t>& a_strides, const void* b, const std::vector<int64_t>& b_strides,
                    const std::vector<int64_t>& shape, cudaStream_t stream);

// out (contiguous with `shape`, elements of `itemsize` bytes: 1, 2, 4 or 8) = cond ? a : b; cond
// bool, a and b of the same element size, all three read through broadcast element strides.
void launch_where(size_t itemsize, void* out, const bool* cond, const std::vector<int64_t>& cond_strides,
                  const void* a, const std::vector<int64_t>& a_strides, const void* b,
                  const std::vector<int64_t>& b_strides, const std::vector<int64_t>& shape, cudaStream_t stream);

}  // namespace rv::cuda
