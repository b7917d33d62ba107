// activation.h: launchers for the pointwise activations (gelu exact / tanh, relu, silu, sigmoid),
// forward and backward, on contiguous f32 or bf16 arrays. See activation.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

enum class ActivationKind : uint8_t { gelu, gelu_tanh, relu, silu, sigmoid };

// y[i] = f(x[i]) for i < n; dtype f32 or bf16 (bf16: loaded to f32, computed, rounded once).
void launch_activation_forward(ActivationKind kind, DType dtype, const void* x, void* y, int64_t n,
                               cudaStream_t stream);

// dx[i] = dy[i] * f'(.) for i < n from saved[i]: x for gelu, gelu_tanh and silu, the forward's
// output y for relu and sigmoid (what the CPU's autograd saves). Same dtypes as the forward.
void launch_activation_backward(ActivationKind kind, DType dtype, const void* saved, const void* dy, void* dx,
                                int64_t n, cudaStream_t stream);

}  // namespace rv::cuda
