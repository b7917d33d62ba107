// conv_device.h: conv2d on a device (CUDA). See conv_device.cpp.
#pragma once
#include "engine/tensor.h"

namespace rv {

// The patch-embedding convolution (kernel == stride, no padding, dilation 1, one group: ViT's and
// Swin's stem) on x's device, as a product: (B, C, H, W) -> (B, O, H / KH, W / KW), a permuted view
// of a channels-last buffer as on the CPU. Any other convolution throws "not implemented on
// <device> yet" (cuDNN will take those).
Tensor conv2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, bool patch_embed, int64_t Ho,
                        int64_t Wo);

}  // namespace rv
