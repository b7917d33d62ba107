// cublas_gemm.cpp: SgemmArgs through cuBLAS, one handle per device, bound to the compute stream.
//
// Row-major to column-major: a row-major (M, N) C is a column-major (N, M) matrix Cᵀ, and
// Cᵀ = op(B)ᵀ op(A)ᵀ, so we ask cuBLAS for the product with the operands swapped: (N, M, K),
// first B with B's transpose flag and ld, then A with A's. Batch strides pass through unchanged
// (0 broadcasts). Math mode CUBLAS_DEFAULT_MATH: FP32 FMA, no TF32 tensor cores (TF32 would need
// CUBLAS_TF32_TENSOR_OP_MATH), so the comparison with our FFMA kernel is like for like.
#include "cuda/kernels/cublas_gemm.h"

#include <cublas_v2.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kMaxDevices = 64;

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("matmul: cuBLAS call ") + what + " failed: " + cublasGetStatusString(s));
}

// The handle of `device` (made current by the caller), created on first use and kept for the
// life of the process (destroying it at exit could run after the driver has shut down).
cublasHandle_t handle_for(int device) {
  static std::mutex mu;
  static cublasHandle_t handles[kMaxDevices] = {};
  if (device < 0 || device >= kMaxDevices) throw std::invalid_argument("matmul: bad cuda device index");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) {
    check_cublas(cublasCreate(&handles[device]), "cublasCreate");
    check_cublas(cublasSetMathMode(handles[device], CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }
  return handles[device];
}

}  // namespace

void launch_cublas_sgemm(const SgemmArgs& p, int device, cudaStream_t stream) {
  if (p.M <= 0 || p.N <= 0 || p.batch <= 0) return;
  if (p.ldc != p.N) throw std::invalid_argument("matmul: the cuBLAS path needs a contiguous C (ldc == N)");
  const int64_t lim = 0x7fffffff;
  if (p.M > lim || p.N > lim || p.K > lim || p.lda > lim || p.ldb > lim)
    throw std::invalid_argument("matmul: a dimension exceeds cuBLAS's int range");
  cublasHandle_t h = handle_for(device);
  check_cublas(cublasSetStream(h, stream), "cublasSetStream");
  const float beta = 0.f;
  // cuBLAS wants ld >= rows of the column-major matrix even when that dim is 1 or K is 0.
  const int64_t ldb = std::max<int64_t>(p.ldb, p.trans_b ? std::max<int64_t>(1, p.K) : p.N);
  const int64_t lda = std::max<int64_t>(p.lda, p.trans_a ? p.M : std::max<int64_t>(1, p.K));
  for (int64_t z0 = 0; z0 < p.batch; z0 += 65535) {  // batches in chunks the launch grid can hold
    const int64_t nb = std::min<int64_t>(65535, p.batch - z0);
    if (p.K == 0) {  // cuBLAS leaves C alone when K = 0 (beta = 0): clear it ourselves
      RV_CUDA_CHECK(cudaMemsetAsync(p.c + z0 * p.stride_c, 0, size_t(nb * p.M * p.N) * sizeof(float), stream));
      continue;
    }
    check_cublas(cublasSgemmStridedBatched(h, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(p.N), int(p.M), int(p.K),
                                           &p.alpha, p.b + z0 * p.stride_b, int(ldb), p.stride_b,
                                           p.a + z0 * p.stride_a, int(lda), p.stride_a, &beta,
                                           p.c + z0 * p.stride_c, int(p.ldc), p.stride_c, int(nb)),
                 "cublasSgemmStridedBatched");
  }
  launch_bias_gelu(p.c, p.batch * p.M, p.N, p.bias, p.gelu, stream);
}

}  // namespace rv::cuda
