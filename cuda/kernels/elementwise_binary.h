// elementwise_binary.h: launcher for z = a op b (add, sub, mul, div) on a CUDA device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/dtype.h"

namespace rv::cuda {

// z is contiguous with `shape`; a and b are read through their (broadcast) element strides for
// `shape` (stride 0 in broadcast dims). dtype: f32 or f64 (the caller checks).
void launch_binary(backend::BinaryOp op, DType dtype, void* z, const void* a, const std::vector<int64_t>& a_strides,
                   const void* b, const std::vector<int64_t>& b_strides, const std::vector<int64_t>& shape,
                   cudaStream_t stream);

}  // namespace rv::cuda
