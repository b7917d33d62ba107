// matmul.h: matrix products with autograd — matmul (torch.matmul semantics) and linear
// (F.linear). Both go through cpu::gemm (OpenBLAS or the engine's blocked GEMM).
#pragma once
#include "engine/tensor.h"

namespace rv {

// torch.matmul:
//   (K) x (K)             -> []            dot product
//   (M, K) x (K, N)       -> (M, N)
//   (K) x (..., K, N)     -> (..., N)      1-D left operand is a row vector, then squeezed
//   (..., M, K) x (K)     -> (..., M)      1-D right operand is a column vector, then squeezed
//   (..., M, K) x (..., K, N) -> (broadcast(...), M, N)   batch dims broadcast
// Operands whose last two dims are transposed (strides (1, ld)) are passed to GEMM with the
// transpose flag, without a copy. f32 and f64; bf16/f16 compute in f32 and round once.
Tensor matmul(const Tensor& a, const Tensor& b);

// y = x · weightᵀ + bias, with x (..., in), weight (out, in), bias (out) or undefined.
// Returns (..., out). Runs as one GEMM over all rows of x.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace rv
