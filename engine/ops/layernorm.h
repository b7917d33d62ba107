// layernorm.h: layer normalisation over the trailing dims (F.layer_norm).
#pragma once
#include "engine/tensor.h"

namespace rv {

// y = (x - mean) / sqrt(var + eps) * weight + bias, where mean and the biased var are taken
// over the trailing dims of x given by normalized_shape (e.g. x (B, N, C) with {C}).
// weight and bias are optional (pass Tensor()) and, when given, have shape normalized_shape.
// Float dtypes; bf16/f16 compute in f32 (statistics in f32, sums accumulated in f64).
// Differentiable in x, weight and bias.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace rv
