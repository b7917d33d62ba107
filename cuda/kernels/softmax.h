// softmax.h: launchers for row-wise softmax / log_softmax over the last dim of a contiguous
// (rows, len) array, forward and fused backward (kernels and their design: softmax.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// y = softmax(x) over each row of `len` values (log_softmax when `log`); rows * len elements,
// both contiguous. dtype: f32, bf16 (f32 math) or f64 (the caller checks). rows or len 0: no-op.
void launch_softmax_forward(DType dtype, bool log, const void* x, void* y, int64_t rows, int64_t len,
                            cudaStream_t stream);

// The backward from the forward's output y and the incoming gradient dy (same layout):
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
// with the sums over each row. dx may not alias dy or y.
void launch_softmax_backward(DType dtype, bool log, const void* dy, const void* y, void* dx, int64_t rows,
                             int64_t len, cudaStream_t stream);

}  // namespace rv::cuda
