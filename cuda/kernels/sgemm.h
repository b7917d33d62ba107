// sgemm.h: launchers for the hand-written fp32 GEMM (sgemm.cu) and its helpers: a bias / GELU
// epilogue pass (used after cuBLAS) and a deterministic column sum (the bias gradient).
//
// Row-major throughout. One GEMM computes, for every batch entry z in [0, batch):
//   C_z (M, N) = alpha * op(A_z) (M, K) * op(B_z) (K, N)  (+ bias[n] per column)  (then GELU)
// where op(A) reads element (m, k) at A[z * stride_a + (trans_a ? k * lda + m : m * lda + k)],
// and likewise for B with (k, n). A batch stride of 0 broadcasts that operand over the batch.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace rv::cuda {

struct SgemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0, batch = 1;
  float alpha = 1.f;
  const float* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const float* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  float* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  const float* bias = nullptr;  // (N,) or nullptr
  bool gelu = false;            // exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), after the bias
};

enum class SgemmKernel : uint8_t {
  automatic,  // simple for small problems, blocked otherwise
  simple,     // 16x16 shared-memory tiles, one output per thread (the obviously correct one)
  blocked,    // 128x128x8 tiles, 8x8 register tile per thread, double-buffered shared memory
};

void launch_sgemm(const SgemmArgs& args, SgemmKernel kernel, cudaStream_t stream);

// c (rows, cols) contiguous, in place: c = gelu?(c + bias[col]); bias may be nullptr.
void launch_bias_gelu(float* c, int64_t rows, int64_t cols, const float* bias, bool gelu, cudaStream_t stream);

// out (cols,) = sum over rows of x (rows, cols) with row stride ld (unit column stride).
// Two stages, fixed order (no atomics): partials: a (column_sum_chunks(rows), cols) f64 workspace.
int64_t column_sum_chunks(int64_t rows);
void launch_column_sum(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out, double* partials,
                       cudaStream_t stream);

}  // namespace rv::cuda
