// norm_kernel.h: vector norms of raw float / double arrays, deterministic under OpenMP.
//
// Used by the optimizers (LAMB's trust ratio and global clipping) and clip_grad_norm_.
// The array is cut into fixed blocks of kNormBlock elements that do not depend on the thread
// count; each block is folded in double (vectorised within the block only), and the block
// results are then added in block order. So the result is the same with 1 or 64 threads, and
// double accumulation keeps it accurate.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/cpu/parallel.h"

namespace rv::cpu {

inline constexpr int64_t kNormBlock = 8192;

// Folds x[0..n) block by block: block(x + b, len) -> double; combine is + or max.
template <class T, class BlockFn>
double fold_blocks(const T* x, int64_t n, bool use_max, BlockFn&& block) {
  if (n <= 0) return 0.0;
  int64_t nb = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(size_t(nb), 0.0);
  parallel_for(nb, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int64_t s = b * kNormBlock, len = std::min(kNormBlock, n - s);
      partial[size_t(b)] = block(x + s, len);
    }
  });
  double acc = 0.0;
  for (double v : partial) acc = use_max ? ((v > acc || std::isnan(v)) ? v : acc) : acc + v;  // NaN wins
  return acc;
}

// sum of x[i]^2, in double. `omp simd` lets the compiler split the block into vector lanes;
// that split is fixed at compile time, so the result still does not depend on threads.
template <class T>
double sum_squares_block(const T* p, int64_t len) {
  double a = 0.0;
#pragma omp simd reduction(+ : a)
  for (int64_t i = 0; i < len; ++i) a += double(p[i]) * double(p[i]);
  return a;
}

template <class T>
double sum_squares(const T* x, int64_t n) {
  return fold_blocks(x, n, false, [](const T* p, int64_t len) { return sum_squares_block(p, len); });
}

// max |x[i]| (0 for an empty array; NaN if any element is NaN).
template <class T>
double max_abs(const T* x, int64_t n) {
  return fold_blocks(x, n, true, [](const T* p, int64_t len) {
    double m = 0.0;
    for (int64_t i = 0; i < len; ++i) {
      double v = std::fabs(double(p[i]));
      if (v > m || std::isnan(v)) m = v;  // NaN wins (and then stays)
    }
    return m;
  });
}

// sum of |x[i]|^p, in double.
template <class T>
double sum_abs_pow(const T* x, int64_t n, double p) {
  return fold_blocks(x, n, false, [p](const T* q, int64_t len) {
    double a = 0.0;
    if (p == 1.0)
      for (int64_t i = 0; i < len; ++i) a += std::fabs(double(q[i]));
    else
      for (int64_t i = 0; i < len; ++i) a += std::pow(std::fabs(double(q[i])), p);
    return a;
  });
}

}  // namespace rv::cpu
