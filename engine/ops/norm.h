// norm.h: batch norm and group norm over (B, C, *) inputs, as torch.nn.functional's.
// (Layer norm, which normalises the last dim of (B, N, C) tokens, has its own file.)
//
// Both normalise x to (x - mean) / sqrt(var + eps) with the biased variance, then apply the
// optional per-channel affine weight (C) and bias (C). Statistics are summed in f64 in a fixed
// order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv {

// Batch norm: statistics per channel over the batch and all spatial positions.
//   x: (B, C) or (B, C, d1, ...), e.g. (B, C, H, W).  running_mean, running_var, weight, bias:
//   (C) or undefined.
// training = true: normalises with the batch's mean and biased variance and, when the running
//   buffers are given, updates them in place exactly as PyTorch does:
//     running_mean = (1 - momentum) running_mean + momentum mean
//     running_var  = (1 - momentum) running_var  + momentum var * n / (n - 1)   (unbiased)
//   with n = B * d1 * ...; the buffers must not require grad. n == 1 is an error (as PyTorch).
// training = false: normalises with running_mean / running_var (both required).
// Differentiable in x, weight and bias, in both modes.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// Group norm: the C channels are split into `groups` groups of C / groups consecutive
// channels; statistics per sample and group, over the group's channels and spatial positions.
//   x: (B, C, *) with C divisible by groups; weight, bias: (C) or undefined.
// Differentiable in x, weight and bias.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

}  // namespace rv
