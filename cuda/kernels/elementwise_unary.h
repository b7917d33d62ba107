// elementwise_unary.h: launchers for the unary / tensor-scalar ops (neg, exp, ..., clamp) and
// for the fused input-gradient maps of the math ops, on a CUDA device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/dtype.h"

namespace rv::cuda {

using UnaryOp = backend::DeviceBackend::UnaryOp;

inline const char* unary_op_name(UnaryOp op) { return backend::DeviceBackend::unary_op_name(op); }

// z (contiguous, `shape`) = op(x, a, b), x read through its element strides for `shape`.
// dtype f32 / f64 / bf16 (the caller checks).
void launch_unary(UnaryOp op, DType dtype, void* z, const void* x, const std::vector<int64_t>& x_strides,
                  const std::vector<int64_t>& shape, double a, double b, cudaStream_t stream);

// out[i] = d op(g[i], s[i]) for the differentiable math ops (see backend.h unary_backward);
// out, g, s contiguous with n elements of `dtype`.
void launch_unary_backward(UnaryOp op, DType dtype, void* out, const void* g, const void* s, int64_t n, double a,
                           double b, cudaStream_t stream);

}  // namespace rv::cuda
