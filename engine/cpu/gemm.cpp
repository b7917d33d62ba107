// gemm.cpp: the CPU matrix product. OpenBLAS when present, else the engine's blocked GEMM.
//
// The blocked GEMM follows the classic Goto/BLIS structure, chosen so that each operand sits
// in the cache level that re-reads it most:
//
//   for jc over N in column blocks (all of K x NC packed at once, <= 8 MB, shared, in L3)
//     pack B[:, jc block] into NR-wide column panels, K block by K block      (parallel)
//     parallel over work items = (MC-row block of C) x (group of B panels):
//       for pc over K in steps of KC
//         pack the A block (MC x KC) into MR-tall row panels   (per thread, lives in L2)
//         for each B panel (KC x NR, stays in L1 while the A panels stream past it)
//           for each A panel: micro-kernel -> an MR x NR tile of C held in registers
//
// A work item runs all K blocks of its own C tiles, so there are only two fork/joins per
// column block (a barrier per K block costs a lot on a loaded machine).
// Packing makes both micro-kernel operands unit-stride whatever the transposes are, and pads
// edge panels with zeros so the micro-kernel always runs full-size (the padded part of the tile
// is simply not stored). The micro-kernel is plain C++ over fixed-size arrays: with MR and NR
// compile-time constants the compiler unrolls it and keeps the MR x NR accumulators in vector
// registers (NR = two vectors wide, so each k step is MR broadcasts and 2*MR fused multiply-adds).
//
// K is split into equal blocks that depend only on K, and every C element is owned by exactly
// one work item, so the result does not depend on the thread count.
#include "engine/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/cpu/parallel.h"

#ifdef RV_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace rv::cpu {

namespace {

// Vector width of the micro-kernel, in bytes (-march=native decides what exists). GCC and
// Clang prefer 256-bit vectors even on AVX-512 machines (to avoid clock throttling in mixed
// code), which would halve this kernel's peak, so the micro-kernel alone asks for 512 bits.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#if defined(__clang__)
#define RV_MICRO_KERNEL_TARGET __attribute__((noinline, min_vector_width(512)))
#else
#define RV_MICRO_KERNEL_TARGET __attribute__((noinline, target("prefer-vector-width=512")))
#endif
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
#ifndef RV_MICRO_KERNEL_TARGET
#define RV_MICRO_KERNEL_TARGET
#endif

template <class T>
struct Blocking {
  static constexpr int NR = 2 * kVecBytes / int(sizeof(T));       // two vectors of C per row
  static constexpr int MR = kVecBytes >= 64 ? 12 : 6;              // 2*MR accumulators + 2 B + 1 A regs
  static constexpr int64_t KC = 384;                              // B panel KC*NR fits L1
  static constexpr int64_t MC = MR * 16;                          // A block MC*KC fits L2
};

// 64-byte aligned scratch buffer.
template <class T>
struct Scratch {
  T* p = nullptr;
  explicit Scratch(int64_t n) {
    size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64 * 64;
    p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
  }
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// Packs rows [0, mc) x cols [0, kc) of op(A) (already offset to the block's corner) into
// MR-row panels: panel p holds, for each k, the MR values op(A)(p*MR + r, k). Rows past mc are 0.
template <class T, int MR>
void pack_a(bool trans, const T* A, int64_t lda, int64_t mc, int64_t kc, T* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - i0);
    T* dst = out + i0 * kc;
    if (trans) {  // op(A)(i, k) = A[k*lda + i]: the MR values of one k are contiguous
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + k * lda + i0;
        for (int64_t r = 0; r < rows; ++r) dst[k * MR + r] = src[r];
        for (int64_t r = rows; r < MR; ++r) dst[k * MR + r] = T(0);
      }
    } else {      // op(A)(i, k) = A[i*lda + k]: walk each row once
      for (int64_t r = 0; r < rows; ++r) {
        const T* src = A + (i0 + r) * lda;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
      for (int64_t r = rows; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = T(0);
    }
  }
}

// Packs NR-column panel `jp` (columns jp*NR ...) of op(B) restricted to kc rows: for each k,
// the NR values op(B)(k, j). Columns past nc are 0.
template <class T, int NR>
void pack_b_panel(bool trans, const T* B, int64_t ldb, int64_t kc, int64_t nc, int64_t jp, T* out) {
  const int64_t j0 = jp * NR;
  const int64_t cols = std::min<int64_t>(NR, nc - j0);
  T* dst = out + j0 * kc;
  if (!trans) {   // op(B)(k, j) = B[k*ldb + j]: contiguous rows
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + k * ldb + j0;
      for (int64_t c = 0; c < cols; ++c) dst[k * NR + c] = src[c];
      for (int64_t c = cols; c < NR; ++c) dst[k * NR + c] = T(0);
    }
  } else {        // op(B)(k, j) = B[j*ldb + k]: walk each stored row (a column of op(B)) once
    for (int64_t c = 0; c < cols; ++c) {
      const T* src = B + (j0 + c) * ldb;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
    }
    for (int64_t c = cols; c < NR; ++c)
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = T(0);
  }
}

// acc (MR x NR) = sum over k of a[k] (MR) outer b[k] (NR). a and b are packed panels.
template <class T, int MR, int NR>
RV_MICRO_KERNEL_TARGET void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict acc) {
  T c[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* ak = a + k * MR;
    const T* bk = b + k * NR;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const T ar = ak[r];
#pragma omp simd
      for (int j = 0; j < NR; ++j) c[r][j] += ar * bk[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r * NR + j] = c[r][j];
}

// Writes the valid rows x cols of a tile into C: C = alpha*acc + (first ? beta*C : C).
template <class T, int NR>
inline void store_tile(const T* acc, int64_t rows, int64_t cols, T alpha, T beta, bool first, T* C, int64_t ldc) {
  for (int64_t r = 0; r < rows; ++r) {
    T* cr = C + r * ldc;
    const T* ar = acc + r * NR;
    if (!first) {
      for (int64_t j = 0; j < cols; ++j) cr[j] += alpha * ar[j];
    } else if (beta == T(0)) {
      for (int64_t j = 0; j < cols; ++j) cr[j] = alpha * ar[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) cr[j] = alpha * ar[j] + beta * cr[j];
    }
  }
}

// C = beta * C (used when K == 0 or alpha == 0).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* cr = C + i * ldc;
    if (beta == T(0)) {
      std::fill(cr, cr + N, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) cr[j] *= beta;
    }
  }
}

void check_args(const char* who, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                int64_t ldc) {
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument(std::string(who) + ": " + what + " (M=" + std::to_string(M) + ", N=" +
                                std::to_string(N) + ", K=" + std::to_string(K) + ")");
  };
  if (M < 0 || N < 0 || K < 0) bad("negative size");
  if (lda < std::max<int64_t>(1, ta ? M : K)) bad("lda=" + std::to_string(lda) + " is too small");
  if (ldb < std::max<int64_t>(1, tb ? K : N)) bad("ldb=" + std::to_string(ldb) + " is too small");
  if (ldc < std::max<int64_t>(1, N)) bad("ldc=" + std::to_string(ldc) + " is too small");
}

template <class T>
void gemm_engine_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                      const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  check_args("gemm_engine", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == T(0)) { scale_c(M, N, beta, C, ldc); return; }
  using Bl = Blocking<T>;
  constexpr int MR = Bl::MR, NR = Bl::NR;

  // K in equal blocks of at most KC (a short last block wastes the packing).
  const int64_t k_blocks = (K + Bl::KC - 1) / Bl::KC;
  const int64_t kc_max = (K + k_blocks - 1) / k_blocks;
  // Columns per B block: all of K is packed at once (so each thread runs every K block of its
  // tiles without waiting for the others), capped at about 8 MB of packed B.
  const int64_t nc_cap = std::max<int64_t>(NR, (int64_t(8) << 20) / (int64_t(sizeof(T)) * K) / NR * NR);
  const int64_t nc_max = std::min<int64_t>(nc_cap, (N + NR - 1) / NR * NR);
  Scratch<T> bpack(K * nc_max);

  const int64_t m_blocks = (M + Bl::MC - 1) / Bl::MC;
  const int threads = num_threads();
  for (int64_t jc = 0; jc < N; jc += nc_max) {
    const int64_t nc = std::min<int64_t>(nc_max, N - jc);
    const int64_t n_panels = (nc + NR - 1) / NR;
    // Few row blocks (small M): also split the B panels so every thread gets work.
    int64_t n_groups = 1;
    if (m_blocks < 2 * threads) n_groups = std::min<int64_t>(n_panels, (2 * threads + m_blocks - 1) / m_blocks);
    const int64_t panels_per_group = (n_panels + n_groups - 1) / n_groups;
    n_groups = (n_panels + panels_per_group - 1) / panels_per_group;

    // Pack B[:, jc:jc+nc]: K block kb starts at bpack + kb*kc_max*nc_pad, then NR-wide panels.
    const int64_t nc_pad = n_panels * NR;
    parallel_for(k_blocks * n_panels, 4, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t kb = p / n_panels, pc = kb * kc_max, kc = std::min<int64_t>(kc_max, K - pc);
        const T* Bblk = tb ? B + jc * ldb + pc : B + pc * ldb + jc;
        pack_b_panel<T, NR>(tb, Bblk, ldb, kc, nc, p % n_panels, bpack.p + kb * kc_max * nc_pad);
      }
    });

    // Work item = (row block, group of B panels); it owns its C tiles for all of K.
    parallel_for(m_blocks * n_groups, 1, [&](int64_t w0, int64_t w1) {
      Scratch<T> apack(Bl::MC * kc_max);
      alignas(64) T acc[MR * NR];
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t mb = w / n_groups, g = w % n_groups;
        const int64_t ic = mb * Bl::MC;
        const int64_t mc = std::min<int64_t>(Bl::MC, M - ic);
        const int64_t jp_begin = g * panels_per_group, jp_end = std::min(n_panels, (g + 1) * panels_per_group);
        for (int64_t kb = 0; kb < k_blocks; ++kb) {
          const int64_t pc = kb * kc_max, kc = std::min<int64_t>(kc_max, K - pc);
          const T* Ablk = ta ? A + pc * lda + ic : A + ic * lda + pc;
          pack_a<T, MR>(ta, Ablk, lda, mc, kc, apack.p);
          const T* bblock = bpack.p + kb * kc_max * nc_pad;
          for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
            const T* bp = bblock + jp * NR * kc;
            const int64_t cols = std::min<int64_t>(NR, nc - jp * NR);
            for (int64_t i0 = 0; i0 < mc; i0 += MR) {
              micro_kernel<T, MR, NR>(kc, apack.p + i0 * kc, bp, acc);
              store_tile<T, NR>(acc, std::min<int64_t>(MR, mc - i0), cols, alpha, beta, kb == 0,
                                C + (ic + i0) * ldc + jc + jp * NR, ldc);
            }
          }
        }
      }
    });
  }
}

template <class T>
void gemm_dispatch(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                   int64_t ldb, T beta, T* C, int64_t ldc) {
#ifdef RV_HAVE_OPENBLAS
  check_args("gemm", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) { scale_c(M, N, beta, C, ldc); return; }
  constexpr int64_t kIntMax = 2147483647;  // CBLAS takes int sizes
  if (std::max({M, N, K, lda, ldb, ldc}) > kIntMax) {
    gemm_engine_impl<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const auto op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, op_a, op_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, op_a, op_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
  }
#else
  gemm_engine_impl<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_dispatch<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_dispatch<double>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_engine(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_engine_impl<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_engine(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_engine_impl<double>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool gemm_uses_blas() {
#ifdef RV_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

template <class T>
void gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const std::vector<int64_t>& a_off, const T* B, int64_t ldb, const std::vector<int64_t>& b_off,
                  T beta, T* C, int64_t ldc, const std::vector<int64_t>& c_off) {
  const int64_t batch = int64_t(c_off.size());
  if (int64_t(a_off.size()) != batch || int64_t(b_off.size()) != batch)
    throw std::invalid_argument("gemm_batched: offset lists differ in length");
  auto one = [&](int64_t i) {
    gemm(ta, tb, M, N, K, alpha, A + a_off[i], lda, B + b_off[i], ldb, beta, C + c_off[i], ldc);
  };
  // A product below ~4 MFLOP cannot keep several threads busy (the fork/join and packing
  // dominate), so give each thread whole products; large products thread internally.
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const bool per_thread = batch > 1 && (flops < 4e6 || (batch >= 2 * num_threads() && flops < 6.4e7));
  if (per_thread) {
    parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

template <class T>
void gemm_strided_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                          int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                          int64_t stride_c, int64_t batch) {
  std::vector<int64_t> ao(batch), bo(batch), co(batch);
  for (int64_t i = 0; i < batch; ++i) {
    ao[i] = i * stride_a;
    bo[i] = i * stride_b;
    co[i] = i * stride_c;
  }
  gemm_batched<T>(ta, tb, M, N, K, alpha, A, lda, ao, B, ldb, bo, beta, C, ldc, co);
}

#define RV_GEMM_BATCHED(T)                                                                                     \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,                 \
                                const std::vector<int64_t>&, const T*, int64_t, const std::vector<int64_t>&, \
                                T, T*, int64_t, const std::vector<int64_t>&);                                \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t, \
                                        const T*, int64_t, int64_t, T, T*, int64_t, int64_t, int64_t);
RV_GEMM_BATCHED(float)
RV_GEMM_BATCHED(double)
#undef RV_GEMM_BATCHED

}  // namespace rv::cpu
