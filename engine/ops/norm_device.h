// norm_device.h: batch norm and group norm on a device, composed of recorded device ops
// (norm_device.cpp says why). Called by batch_norm / group_norm (norm.h) after their argument
// checks when x is not on the CPU.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/ops/replica_group.h"
#include "engine/tensor.h"

namespace rv {

Tensor batch_norm_composed_on_device(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                     const Tensor& weight, const Tensor& bias, bool training, double momentum,
                                     double eps);

// sync_batch_norm (norm.h) on a device: the local statistics and the backward's two sums are
// device reductions; those few per-channel numbers go to the host for the group's collectives
// (replica_group.h) and back. Written with generic ops only, so it also runs on CPU tensors,
// which is how the CPU-only tests check it against the fused CPU kernel.
Tensor sync_batch_norm_composed_on_device(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                          const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                          const std::shared_ptr<ReplicaGroup>& group);

Tensor group_norm_composed_on_device(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                                     double eps);

}  // namespace rv
