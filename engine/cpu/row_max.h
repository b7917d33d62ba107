// row_max.h: the maximum of a contiguous row of floats, vectorised (softmax, cross_entropy).
//
// Why its own helper: GCC 12 does not vectorise a max written with fixed partial lanes,
//   for (j ...) for (l < 16) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
// (it emits 16 scalar vmaxss per block, ~20% of a softmax over rows of 197), nor a single running
// max (a conditional float reduction, which it leaves alone without -ffast-math). GCC's vector
// extension (a 64-byte vector of 16 floats; clang has it too) makes the lanes explicit: one vmaxps
// per 16 values on AVX-512, two on AVX2. Other compilers get the plain lane loop.
//
// Semantics are those of the lane loop, independent of how the compiler vectorises: lane l keeps
// the max of x[l], x[l + 16], ... by `v > m ? v : m` (a NaN value never replaces m, so NaN is
// ignored here; softmax turns NaN into a NaN row through exp anyway), lanes combine in a fixed
// order, then the tail. The result is -inf for an empty row.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace rv::cpu {

template <class T>
inline T row_max(const T* x, int64_t n) {
  constexpr int kLanes = 16;
  T mx = -std::numeric_limits<T>::infinity();
  int64_t j = 0;
#if defined(__GNUC__)
  if constexpr (sizeof(T) == 4) {
    typedef T vec __attribute__((vector_size(kLanes * sizeof(T))));
    vec m;
    for (int l = 0; l < kLanes; ++l) m[l] = mx;
    for (; j + kLanes <= n; j += kLanes) {
      vec v;
      std::memcpy(&v, x + j, sizeof(vec));  // an unaligned load
      m = v > m ? v : m;
    }
    for (int l = 0; l < kLanes; ++l) mx = m[l] > mx ? m[l] : mx;
    for (; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
    return mx;
  }
#endif
  T m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = mx;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  for (int l = 0; l < kLanes; ++l) mx = m[l] > mx ? m[l] : mx;
  for (; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

}  // namespace rv::cpu
