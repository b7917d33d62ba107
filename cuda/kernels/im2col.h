// im2col.h: launchers for im2col / col2im, the data movement of conv2d on a CUDA device (the
// arithmetic is the existing GEMM). See im2col.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// The geometry of one 2-D convolution: x (B, C, H, W), groups G (C % G == 0), kernel (KH, KW),
// stride, padding, dilation, output (Ho, Wo).
struct Im2colGeom {
  int64_t B, C, H, W, G, KH, KW, sh, sw, ph, pw, dh, dw, Ho, Wo;
};

// cols (G, B*Ho*Wo, C/G*KH*KW) from x (B, C, H, W); both contiguous; dtype f32 or f64.
void launch_im2col(DType dtype, void* cols, const void* x, const Im2colGeom& g, cudaStream_t stream);

// dx (B, C, H, W) = im2col's adjoint applied to cols (G, B*Ho*Wo, C/G*KH*KW); both contiguous.
void launch_col2im(DType dtype, void* dx, const void* cols, const Im2colGeom& g, cudaStream_t stream);

}  // namespace rv::cuda
