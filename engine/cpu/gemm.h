// gemm.h: the one matrix product every CPU op goes through (matmul, linear, conv, attention).
//
//   C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C        all row-major
//
// op(A) = A when trans_a is false (A stored M x K, row i at A + i*lda), and A^T when it is true
// (A stored K x M). Likewise for B. A "transposed" tensor view (last two strides (1, ld)) is
// therefore passed as-is with the flag set: no copy. beta == 0 means C is not read (it may hold
// NaN), as in BLAS.
//
// gemm() calls OpenBLAS when the build found it (RV_HAVE_OPENBLAS) and otherwise the engine's
// own blocked GEMM, gemm_engine(), which is also what the CUDA image (no OpenBLAS) runs on the
// CPU. gemm_engine is always compiled so that tests check it next to the BLAS path.
//
// Threads: both paths use OpenMP (libopenblas comes from openblas-openmp). Called from inside an
// OpenMP parallel region they run on the calling thread only (OpenBLAS checks omp_in_parallel,
// gemm_engine goes through cpu::parallel_for which does the same), so a parallel loop over
// images or batch entries never asks for more threads than cores.
#pragma once
#include <cstdint>
#include <vector>

namespace rv::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// The engine's blocked GEMM (packed panels, register-blocked micro-kernel, OpenMP over tiles).
// Results do not depend on the thread count: each C element is accumulated by one thread, in
// the same k order.
void gemm_engine(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_engine(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// True when gemm() goes to OpenBLAS.
bool gemm_uses_blas();

// `batch` products C_i = alpha * op(A_i) op(B_i) + beta * C_i, where X_i = X + x_offsets[i]
// (element offsets; broadcast operands simply repeat an offset). When each product is small
// the batch entries run in parallel, one thread per product; otherwise they run one after the
// other and each product uses all threads.
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const std::vector<int64_t>& a_offsets, const T* B, int64_t ldb,
                  const std::vector<int64_t>& b_offsets, T beta, T* C, int64_t ldc,
                  const std::vector<int64_t>& c_offsets);

// The same with constant strides between batch entries.
template <class T>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                          int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                          int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace rv::cpu
