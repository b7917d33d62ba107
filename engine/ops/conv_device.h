// conv_device.h: conv2d and conv_transpose2d on a device (CUDA). See conv_device.cpp.
#pragma once
#include "engine/backend.h"
#include "engine/tensor.h"

namespace rv {

// conv2d of x (B, C, H, W) with w (O, C/G, KH, KW) and bias (O) or undefined, all on x's device,
// with the window `win` (its Ho, Wo already computed and checked by the op). The patch
// embedding (kernel == stride, no padding, dilation 1, one group: `patch_embed`) returns a
// permuted view of a channels-last buffer, as on the CPU; every other convolution runs as
// im2col + GEMM (and returns a (B, O, Ho, Wo) view of a (B, Ho, Wo, O) buffer when G == 1).
// When the backend's conv_impl() is cudnn (ROPEVIT_CONV=cudnn), all of them go to its vendor
// entries instead (contiguous NCHW result).
Tensor conv2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, bool patch_embed,
                        const backend::DeviceBackend::ConvWindow& win);

// conv_transpose2d of x (B, Cin, H, W) with w (Cin, Cout/G, KH, KW) and bias (Cout) or undefined,
// the output (B, Cout, Ho, Wo). `win` describes the ADJOINT convolution (Cout -> Cin: its Ho, Wo
// are H, W), whose col2im is this op's last step.
Tensor conv_transpose2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t Cout, int64_t Ho,
                                  int64_t Wo, const backend::DeviceBackend::ConvWindow& win);

}  // namespace rv
