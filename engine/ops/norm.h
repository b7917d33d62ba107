// norm.h: batch norm and group norm over (B, C, *) inputs, as torch.nn.functional's.
// (Layer norm, which normalises the last dim of (B, N, C) tokens, has its own file.)
//
// Both normalise x to (x - mean) / sqrt(var + eps) with the biased variance, then apply the
// optional per-channel affine weight (C) and bias (C). Statistics are summed in f64 in a fixed
// order, so results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/ops/replica_group.h"
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

// Synchronised batch norm (torch.nn.SyncBatchNorm's training step): batch_norm in training mode
// with the statistics of the whole data-parallel batch, i.e. of every rank's x together
// (replica_group.h). Each rank passes its own shard x (B_r, C, ...); B_r may differ between
// ranks (even 0). Then on every rank
//   y = batch_norm of the concatenated batch, restricted to this rank's rows;
//   running stats updated with the global mean and the global unbiased variance (n = sum of
//   every rank's B_r * d1 * ...);
//   backward: dx = what one process with the whole batch gets for this rank's rows (the two
//   per-channel sums it needs are all-reduced: one collective per call, issued on every rank);
//   dweight, dbias = this rank's share of the full-batch gradient (the data-parallel gradient
//   sum adds the shares up).
// Collective: every rank of `group` must call it (and run its backward) in the same order.
// group null or of one rank: exactly batch_norm(..., training = true, ...).
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, const std::shared_ptr<ReplicaGroup>& group, double momentum = 0.1,
                       double eps = 1e-5);

// Group norm: the C channels are split into `groups` groups of C / groups consecutive
// channels; statistics per sample and group, over the group's channels and spatial positions.
//   x: (B, C, *) with C divisible by groups; weight, bias: (C) or undefined.
// Differentiable in x, weight and bias.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

}  // namespace rv
