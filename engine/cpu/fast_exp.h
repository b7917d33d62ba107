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

inline float fast_exp(float x) {
  const bool underflow = x < -87.0f;
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two so that n * C1 is exact.
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float two_n = std::bit_cast<float>((int32_t(n) + 127) << 23);  // 2^n, n in [-126, 127]
  return underflow ? 0.0f : er * two_n;
}

inline double fast_exp(double x) { return std::exp(x); }  // f64 is for checks, not speed

}  // namespace rv::cpu
