// attention_device.h: scaled dot-product attention on a device (CUDA), composed of the device's
// own ops until the fused flash kernel (issue 8) replaces it. See attention_device.cpp.
#pragma once
#include "engine/tensor.h"

namespace rv {

// softmax(q kᵀ * scale + bias) v with q, k, v, bias already checked by
// scaled_dot_product_attention and all on one device. mask is not supported here yet (throws).
Tensor attention_composed_on_device(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                                    const Tensor& mask, double scale);

}  // namespace rv
