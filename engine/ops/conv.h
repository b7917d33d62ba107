// conv.h: 2-D convolution and transposed convolution with autograd (NCHW, as PyTorch).
//
//   conv2d            x (B, C, H, W), weight (O, C/groups, KH, KW), bias (O) or undefined
//                     -> (B, O, Ho, Wo), Ho = (H + 2*pad - dil*(KH-1) - 1) / stride + 1
//   conv_transpose2d  x (B, C, H, W), weight (C, O/groups, KH, KW), bias (O) or undefined
//                     -> (B, O, Ho, Wo), Ho = (H-1)*stride - 2*pad + dil*(KH-1) + out_pad + 1
// Pairs are (height, width). f32 and f64; bf16/f16 compute in f32 and round once.
//
// The ViT patch embedding (kernel == stride, no padding, dilation 1, groups 1) runs as one
// GEMM over all patches and returns its output as a (B, O, Ho, Wo) view of a channels-last
// (B, Ho, Wo, O) buffer, so the usual `.flatten(2).transpose(1, 2)` to tokens (B, N, C) that
// follows is a free view.
#pragma once
#include <array>

#include "engine/tensor.h"

namespace rv {

using Pair = std::array<int64_t, 2>;

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
              Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
                        Pair padding = {0, 0}, Pair output_padding = {0, 0}, Pair dilation = {1, 1},
                        int64_t groups = 1);

}  // namespace rv
