// conv_device.cpp: the patch-embedding convolution on a device, as recorded view ops and one
// product. With kernel == stride the windows do not overlap, so
//
//   patches (B*Ho*Wo, C*KH*KW) = x cropped to (Ho*KH, Wo*KW), viewed (B, C, Ho, KH, Wo, KW),
//                                permuted to (B, Ho, Wo, C, KH, KW) and copied contiguous
//   tokens  (B*Ho*Wo, O)       = linear(patches, weight viewed (O, C*KH*KW), bias)
//
// which is exactly the convolution's sum over (c, kh, kw) per output pixel and channel. The one
// copy (the permute) and the product are device kernels; autograd gives the backward pass
// (the gradient of the crop is zero in the cropped-off border, as the convolution's).
#include "engine/ops/conv_device.h"

#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/ops/matmul.h"

namespace rv {

Tensor conv2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, bool patch_embed, int64_t Ho,
                        int64_t Wo) {
  const Device dev = x.device();
  if (!(w.device() == dev) || (bias.defined() && !(bias.device() == dev)))
    throw std::invalid_argument("conv2d: x is on " + dev.str() + " but the weight or bias is on " +
                                (w.device() == dev ? bias.device() : w.device()).str() + "; move it with .to(device)");
  if (!patch_embed) backend::throw_not_implemented("conv2d (other than kernel == stride, the patch embedding)", dev);
  const int64_t B = x.size(0), C = x.size(1), O = w.size(0), KH = w.size(2), KW = w.size(3);
  const Tensor cropped = x.narrow(2, 0, Ho * KH).narrow(3, 0, Wo * KW);
  const Tensor patches =
      cropped.reshape({B, C, Ho, KH, Wo, KW}).permute({0, 2, 4, 1, 3, 5}).reshape({B * Ho * Wo, C * KH * KW});
  const Tensor tokens = linear(patches, w.reshape({O, C * KH * KW}), bias);
  return tokens.reshape({B, Ho, Wo, O}).permute({0, 3, 1, 2});
}

}  // namespace rv
