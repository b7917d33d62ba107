// cublas_gemm.h: the same GEMM contract as sgemm.h (SgemmArgs), computed by cuBLAS
// (cublasSgemmStridedBatched), as the reference and the switch target for the hand-written kernel.
#pragma once
#include <cuda_runtime.h>

#include "cuda/kernels/sgemm.h"

namespace rv::cuda {

// Runs args on `stream` of `device` with cuBLAS in plain FP32 (CUBLAS_DEFAULT_MATH: no TF32),
// then the bias / GELU epilogue as a separate pass (launch_bias_gelu). Requires ldc == N.
void launch_cublas_sgemm(const SgemmArgs& args, int device, cudaStream_t stream);

}  // namespace rv::cuda
