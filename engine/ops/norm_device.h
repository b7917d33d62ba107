// norm_device.h: batch norm and group norm on a device, composed of recorded device ops
// (norm_device.cpp says why). Called by batch_norm / group_norm (norm.h) after their argument
// checks when x is not on the CPU.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv {

Tensor batch_norm_composed_on_device(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                     const Tensor& weight, const Tensor& bias, bool training, double momentum,
                                     double eps);

Tensor group_norm_composed_on_device(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                                     double eps);

}  // namespace rv
