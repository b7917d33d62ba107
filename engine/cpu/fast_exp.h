// fast_exp.h: an exp() for float that the compiler can vectorise.
//
// glibc's expf is a scalar call, so a loop of exps over a row of attention scores runs one lane at
// a time; in a fused attention block the exps then cost about as much as the two matmuls. This
// version is plain arithmetic (Cody-Waite range reduction + a degree-6 polynomial, the classic
// Cephes coefficients), so GCC turns a loop of it into AVX2/AVX-512 code. Error: within 2 ulp of
// expf over the range attention uses (x <= 0). Inputs below -87 (including -inf) give exactly 0,
// which is what a masked score must contribute; e^-87 ~ 1.6e-38 is below anything a softmax row
// sum of at least 1 could notice.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace rv::cpu {

// e^r for |r| <= ln2 / 2 (the reduced argument): 1 + r + r^2 p(r), with p of degree 5. F is float
// or a float vector type; shared by fast_exp, fast_exp_vec and vm::exp (vec_math.h).
template <class F>
inline F exp_reduced(F r) {
  F p = F{} + 1.9875691500e-4f;  // F{} + c: a float or a splat alike
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

inline float fast_exp(float x) {
  const bool underflow = x < -87.0f;
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two so that n * C1 is exact.
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float er = exp_reduced(r);
  const float two_n = std::bit_cast<float>((int32_t(n) + 127) << 23);  // 2^n, n in [-126, 127]
  return underflow ? 0.0f : er * two_n;
}

inline double fast_exp(double x) { return std::exp(x); }  // f64 is for checks, not speed

// The same exp on a whole SIMD vector of floats (GCC/Clang vector extension VF with the matching
// int32 vector VI), for loops the compiler would not vectorise on its own. The steps match
// fast_exp above, except that n is rounded to nearest-even with the 1.5 * 2^23 trick (which also
// leaves n in the low mantissa bits), so a tie may pick the other n; |r| <= ln2/2 either way.
template <class VF, class VI>
inline VF fast_exp_vec(VF x) {
  const VF lo = VF{} - 87.0f, hi = VF{} + 88.0f, zero = VF{};
  const VI underflow = x < lo;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const VF magic = VF{} + 12582912.0f;  // 1.5 * 2^23
  const VF t = x * 1.44269504088896341f + magic;
  const VF n = t - magic;
  VF r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const VF er = exp_reduced(r);
  VI ni;
  __builtin_memcpy(&ni, &t, sizeof(ni));
  ni = (ni - 0x4B400000 + 127) << 23;  // the bits of t are those of 1.5 * 2^23 plus n
  VF two_n;
  __builtin_memcpy(&two_n, &ni, sizeof(ni));
  return underflow ? zero : er * two_n;
}

}  // namespace rv::cpu
