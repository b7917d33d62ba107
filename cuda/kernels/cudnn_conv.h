// cudnn_conv.h: 2-D convolution by cuDNN, the reference and fallback for our im2col + GEMM path
// (ROPEVIT_CONV=cudnn, cuda/backend_conv.cpp). Plain C++ launchers over device pointers, like
// the other kernel headers; cudnn.h stays inside cudnn_conv.cpp, which is the only file built
// differently when CMake found cuDNN (cmake/Cudnn.cmake) and explains how to get it otherwise.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace rv::cuda {

enum class CudnnDType : uint8_t { f32, f64, bf16 };

// One convolution: x (B, C, H, W) * w (O, C/groups, KH, KW) -> y (B, O, Ho, Wo), all contiguous
// NCHW, cross-correlation (no kernel flip, as conv2d), no bias.
struct CudnnConvArgs {
  int64_t B = 0, C = 0, H = 0, W = 0, O = 0, KH = 1, KW = 1, Ho = 0, Wo = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  CudnnDType dtype = CudnnDType::f32;
};

// Whether this build has cuDNN; if not, why (a sentence that says how to get it).
bool cudnn_built_in();
std::string cudnn_unavailable_reason();
// The version of the library loaded at run time, "9.26.0" ("" without cuDNN).
std::string cudnn_version();

// The three products, queued on `stream` of `device` (current). Each picks the fastest
// deterministic algorithm cuDNN's heuristics list for the shape (once per shape: cached), f32 in
// plain FP32 FMA (no TF32, as our kernels and the cuBLAS reference), f64 likewise, bf16 on the
// tensor cores with f32 accumulation. The workspace comes from the caching allocator.
void cudnn_conv_forward(const CudnnConvArgs& a, const void* x, const void* w, void* y, int device,
                        cudaStream_t stream);
void cudnn_conv_backward_data(const CudnnConvArgs& a, const void* dy, const void* w, void* dx, int device,
                              cudaStream_t stream);
void cudnn_conv_backward_filter(const CudnnConvArgs& a, const void* x, const void* dy, void* dw, int device,
                                cudaStream_t stream);

}  // namespace rv::cuda
