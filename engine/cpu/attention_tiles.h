// attention_tiles.h: the small dense building blocks of the fused attention kernels
// (attention_fused.cpp): a SIMD vector type, a register-blocked tile product, and the packing
// of q/k/v rows into padded, aligned scratch.
//
// Vectors are GCC/Clang vector extensions (`vector_size`), so one source gives AVX-512 code with
// -march=native on this machine, AVX2 or SSE elsewhere, without intrinsics. Every packed buffer
// has a leading dimension that is a multiple of the vector width W, so rows start aligned and
// the inner loops never need a scalar tail.
//
// tile_gemm computes C (M x N) (+)= A (M x K) * B (K x N) where
//   A is read one scalar at a time through two strides (so A or its transpose serve alike),
//   B is packed row-major with N a multiple of W (vectors along N),
//   C is row-major.
// The micro-kernel keeps an R x NV block of C in registers (R rows, NV vectors of W columns):
// per step of K it loads NV vectors of B and broadcasts R scalars of A for R*NV FMAs. With
// NV = 4 (64 floats) R = 6 gives 24 accumulators + 4 B vectors + 1 broadcast, under AVX-512's
// 32 registers; narrower strips use more rows so that FMAs, not loads, stay the bottleneck.
// K is cut into chunks of KC so that the B chunk (KC x 64 floats = 16 KB) stays in L1 while
// all the row blocks of A stream past it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rv::cpu::tiles {

#if defined(__AVX512F__)
inline constexpr int kVecBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVecBytes = 32;
#else
inline constexpr int kVecBytes = 16;
#endif

template <class T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
  typedef int32_t itype __attribute__((vector_size(kVecBytes)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
  typedef int64_t itype __attribute__((vector_size(kVecBytes)));
};

template <class T>
using V = typename Vec<T>::type;
template <class T>
inline constexpr int64_t W = kVecBytes / int64_t(sizeof(T));  // lanes per vector

template <class T>
inline V<T> load(const T* p) {
  V<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T>
inline void store(T* p, V<T> v) {
  std::memcpy(p, &v, sizeof(v));
}
template <class T>
inline V<T> splat(T x) {
  // x - 0 is x for every x, so this is a plain broadcast (often folded into the FMA as a
  // {1to16} memory operand); 0 + x would cost an add, since -0 + 0 = +0.
  return x - V<T>{};
}
template <class T>
inline int64_t round_up(int64_t n) {
  return (n + W<T> - 1) / W<T> * W<T>;
}

// Aligned scratch of n elements (n rounded up to whole vectors), reused across calls of one thread.
template <class T>
struct Buffer {
  std::vector<V<T>> v;
  T* get(int64_t n) {
    const size_t nv = size_t((n + W<T> - 1) / W<T>);
    if (v.size() < nv) v.resize(nv);
    return reinterpret_cast<T*>(v.data());
  }
};

// ---- the tile product ---------------------------------------------------------------------

// Rows per micro-kernel for a strip of NV vectors (keeps R*NV + NV + 1 <= 32 registers).
template <int NV>
inline constexpr int kRows = NV == 4 ? 6 : NV == 3 ? 8 : 12;

// C[r][0 : NV*W] (+)= sum_p A[r*ar + p*ap] * B[p*ldb + 0 : NV*W] for r < R.
template <class T, int R, int NV, bool ACC>
inline void micro(int64_t K, const T* A, int64_t ar, int64_t ap, const T* B, int64_t ldb, T* C, int64_t ldc) {
  V<T> acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = ACC ? load(C + r * ldc + v * W<T>) : V<T>{};
  for (int64_t p = 0; p < K; ++p) {
    V<T> b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = load(B + p * ldb + v * W<T>);
    const T* ap_ = A + p * ap;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const V<T> x = splat(ap_[r * ar]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += x * b[v];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(C + r * ldc + v * W<T>, acc[r][v]);
}

// The last M % R rows of a strip: picks the micro-kernel with exactly that many rows.
template <class T, int NV, bool ACC, int Rr = 1>
inline void micro_rest(int rest, int64_t K, const T* A, int64_t ar, int64_t ap, const T* B, int64_t ldb, T* C,
                       int64_t ldc) {
  if constexpr (Rr < kRows<NV>) {
    if (rest == Rr)
      micro<T, Rr, NV, ACC>(K, A, ar, ap, B, ldb, C, ldc);
    else
      micro_rest<T, NV, ACC, Rr + 1>(rest, K, A, ar, ap, B, ldb, C, ldc);
  }
}

// One strip of NV vectors of columns, all M rows.
template <class T, int NV, bool ACC>
void strip(int64_t M, int64_t K, const T* A, int64_t ar, int64_t ap, const T* B, int64_t ldb, T* C, int64_t ldc) {
  constexpr int R = kRows<NV>;
  int64_t r = 0;
  for (; r + R <= M; r += R) micro<T, R, NV, ACC>(K, A + r * ar, ar, ap, B, ldb, C + r * ldc, ldc);
  if (r < M) micro_rest<T, NV, ACC>(int(M - r), K, A + r * ar, ar, ap, B, ldb, C + r * ldc, ldc);
}

template <class T, bool ACC>
void strips(int64_t M, int64_t N, int64_t K, const T* A, int64_t ar, int64_t ap, const T* B, int64_t ldb, T* C,
            int64_t ldc) {
  // Strips of at most 4 vectors, balanced (13 vectors -> 4+3+3+3 rather than 4+4+4+1, whose
  // 1-vector strip would be bound by the broadcasts).
  const int64_t total = N / W<T>, ns = (total + 3) / 4;
  for (int64_t si = 0, c0 = 0; si < ns; ++si) {
    const int64_t nv = total / ns + (si < total % ns ? 1 : 0);
    const int64_t cstart = c0;
    c0 += nv * W<T>;
    switch (nv) {
      case 4: strip<T, 4, ACC>(M, K, A, ar, ap, B + cstart, ldb, C + cstart, ldc); break;
      case 3: strip<T, 3, ACC>(M, K, A, ar, ap, B + cstart, ldb, C + cstart, ldc); break;
      case 2: strip<T, 2, ACC>(M, K, A, ar, ap, B + cstart, ldb, C + cstart, ldc); break;
      default: strip<T, 1, ACC>(M, K, A, ar, ap, B + cstart, ldb, C + cstart, ldc); break;
    }
  }
}

// C (M x N) = A B, or C += A B when `accumulate`. N must be a multiple of W<T>; A(r, p) is
// A[r*ar + p*ap]; B and C rows are ldb and ldc apart.
template <class T>
void tile_gemm(bool accumulate, int64_t M, int64_t N, int64_t K, const T* A, int64_t ar, int64_t ap, const T* B,
               int64_t ldb, T* C, int64_t ldc) {
  constexpr int64_t KC = 4096 / W<T>;  // 16 KB of a 64-wide B strip
  if (K == 0 && !accumulate) {
    for (int64_t r = 0; r < M; ++r) std::fill(C + r * ldc, C + r * ldc + N, T(0));
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    if (accumulate || k0 > 0)
      strips<T, true>(M, N, kc, A + k0 * ap, ar, ap, B + k0 * ldb, ldb, C, ldc);
    else
      strips<T, false>(M, N, kc, A + k0 * ap, ar, ap, B + k0 * ldb, ldb, C, ldc);
  }
}

// ---- packing --------------------------------------------------------------------------------

// dst[r][0:width] = s * src[r*sn + 0:width] for r < n, zeros up to ld (ld >= width).
template <class T>
void pack_rows(const T* src, int64_t sn, int64_t n, int64_t width, T s, T* dst, int64_t ld) {
  for (int64_t r = 0; r < n; ++r) {
    const T* in = src + r * sn;
    T* o = dst + r * ld;
    for (int64_t d = 0; d < width; ++d) o[d] = in[d] * s;
    for (int64_t d = width; d < ld; ++d) o[d] = T(0);
  }
}

// dst[d][c] = src[c*sn + d] for d < width, c < n; zeros for the padding columns n..ld-1.
// Done in blocks of W rows of src so that the writes are whole vectors.
template <class T>
void pack_transposed(const T* src, int64_t sn, int64_t n, int64_t width, T* dst, int64_t ld) {
  constexpr int64_t w = W<T>;
  for (int64_t c0 = 0; c0 < ld; c0 += w) {
    const int64_t cols = std::min(w, n - c0);
    if (cols == w) {
      for (int64_t d = 0; d < width; ++d) {
        T* o = dst + d * ld + c0;
        const T* in = src + c0 * sn + d;
        for (int64_t c = 0; c < w; ++c) o[c] = in[c * sn];
      }
    } else {
      for (int64_t d = 0; d < width; ++d) {
        T* o = dst + d * ld + c0;
        for (int64_t c = 0; c < w; ++c) o[c] = c < cols ? src[(c0 + c) * sn + d] : T(0);
      }
    }
  }
}

// ---- row reductions -------------------------------------------------------------------------

template <class T>
inline T hmax(V<T> v) {
  T m = v[0];
  for (int64_t i = 1; i < W<T>; ++i) m = std::max(m, T(v[i]));
  return m;
}
template <class T>
inline T hsum(V<T> v) {
  T s = 0;
  for (int64_t i = 0; i < W<T>; ++i) s += v[i];
  return s;
}

}  // namespace rv::cpu::tiles
