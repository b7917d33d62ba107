// vec_math.h: exp, log, erf, erfc, tanh, sigmoid and the normal CDF for float that the compiler can vectorise.
//
// glibc's expf / logf / erff / tanhf are scalar calls, so a loop over a tensor that calls them runs
// one lane at a time (gelu's erf loop reached 9% of the copy bandwidth). These versions are plain
// branch-free arithmetic on one float (polynomials, bit manipulation of the exponent, and selects
// `c ? a : b` instead of branches), always inlined, so GCC turns a loop such as
//   for (i) y[i] = vm::erf(x[i]);
// into AVX-512 / AVX2 code at -O3 -march=native. The double overloads are libm itself: f64 is the
// dtype of gradient checks, where accuracy matters and speed does not.
//
// Accuracy, measured against double-precision libm over dense sweeps of float inputs
// (tests/unit/test_vec_math.cpp asserts these bounds; ulp = spacing of floats at the true value;
// the largest error the sweeps found is in brackets):
//   exp      <= 2 ulp [0.99] where the result is a normal float; 0 below -103.97, inf above 88.72.
//            Subnormal results (x in [-103.9, -87.3]) are within 1 subnormal step (2^-149).
//   exp_ftz  <= 2 ulp for x in [-87.33, 88]; exactly 0 below (for softmax rows, x <= 0).
//   log      <= 2 ulp [0.95] for every positive float, subnormals included; log(0) = -inf,
//            log(x < 0) = NaN.
//   erf      <= 2.5 ulp [2.05] everywhere (|x| < 0.5: x + x q(x^2); above: 1 - erfc(|x|)).
//   erfc     <= 6 ulp [5.6] where the result is normal (x < 9.19); 0 beyond 10.06. erfc(x) is
//            computed directly (not as 1 - erf), so its tail keeps full relative precision.
//   tanh     <= 3 ulp [1.27] everywhere.
//   sigmoid  <= 3 ulp [2.42] where the result is normal; never NaN for finite x (exactly 0 / 1
//            far out).
//   normal_cdf_fast (the normal CDF, for gelu): absolute error <= 2.5e-7 [1.7e-7], no relative
//            bound in the lower tail (see its comment).
// NaN in gives NaN out; +-inf give the limits.
//
// The polynomial coefficients were fitted for this file (weighted least squares driven to an
// equi-ripple relative error, in double, then rounded to float), except exp's, which it shares
// with fast_exp.h.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "engine/cpu/fast_exp.h"

// Always inlined: a loop vectorises only if every call in it is inlined, and GCC's heuristics
// give up on bodies this size. RV_VM_LAMBDA does the same for a lambda that calls them (put it
// after the parameter list: [](auto v) RV_VM_LAMBDA { return vm::erf(v); }), since the map
// kernels call the lambda inside their loops.
#define RV_VM_INLINE inline __attribute__((always_inline))
#define RV_VM_LAMBDA __attribute__((always_inline))

namespace rv::cpu::vm {

namespace detail {
RV_VM_INLINE float bits_to_float(int32_t b) { return std::bit_cast<float>(b); }
RV_VM_INLINE int32_t float_to_bits(float f) { return std::bit_cast<int32_t>(f); }
RV_VM_INLINE float pow2(int32_t n) { return bits_to_float((n + 127) << 23); }  // 2^n, n in [-126, 127]
}  // namespace detail

// ---- exp --------------------------------------------------------------------------------------
// x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts so that n * hi is exact), e^x = 2^n e^r. Unlike
// fast_exp (which serves attention, where x <= 0), this covers the whole float range: 2^n is
// applied as two factors 2^(n/2) 2^(n - n/2), so n in [-150, 128] (subnormal results and the top
// binade) needs no special case; the final product rounds once.
RV_VM_INLINE float exp(float x) {
  float xc = x < -104.0f ? -104.0f : x;  // NaN compares false and passes through both clamps
  xc = xc > 89.0f ? 89.0f : xc;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer, kept in the low bits
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float er = exp_reduced(r);
  const int32_t ni = detail::float_to_bits(t) - 0x4B400000;  // n as an integer
  const int32_t n1 = ni >> 1;
  return er * detail::pow2(n1) * detail::pow2(ni - n1);
}
RV_VM_INLINE double exp(double x) { return std::exp(x); }

// ---- exp_ftz: exp flushing subnormal results to 0, for softmax rows ---------------------------
// The same reduction and polynomial as exp, but 2^n applied as one factor, which is exact only
// while 2^n is a normal float: so for x < -87.33 (results below 2^-126) it returns 0 instead of a
// subnormal, and x must be <= 88 (no overflow path: callers pass x - max(row) <= 0). 30% cheaper
// than exp (0.21 against 0.30 ns per element on one core). Where a softmax row sums to >= 1, a
// term below 1.2e-38 is invisible anyway.
RV_VM_INLINE float exp_ftz(float x) {
  const bool tiny = x < -87.33f;  // NaN compares false and propagates through the polynomial
  const float xc = tiny ? -87.33f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23, as in exp
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float er = exp_reduced(r);
  const int32_t ni = detail::float_to_bits(t) - 0x4B400000;  // n as an integer, in [-126, 127]
  return tiny ? 0.0f : er * detail::pow2(ni);
}
RV_VM_INLINE double exp_ftz(double x) { return std::exp(x); }

// ---- log --------------------------------------------------------------------------------------
// x = 2^e m with m in [sqrt(1/2), sqrt(2)), log x = e ln2 + log(1 + f) with f = m - 1 (exact),
// log(1 + f) = f - f^2/2 + f^3 p(f), p of degree 7. Subnormal x is first scaled by 2^23.
RV_VM_INLINE float log(float x) {
  const bool sub = x < 1.17549435e-38f;  // subnormal (or 0 or negative: replaced below)
  const float xs = sub ? x * 8388608.0f : x;
  const int32_t bits = detail::float_to_bits(xs);
  const int32_t e = (bits - 0x3F3504F3) >> 23;  // 0x3F3504F3 = sqrt(1/2); arithmetic shift = floor
  const float m = detail::bits_to_float(bits - (e << 23));
  const float ef = float(e) - (sub ? 23.0f : 0.0f);
  const float f = m - 1.0f;
  float p = -7.973860204e-02f;
  p = p * f + 1.265522093e-01f;
  p = p * f - 1.298919618e-01f;
  p = p * f + 1.420999616e-01f;
  p = p * f - 1.664159149e-01f;
  p = p * f + 2.000119984e-01f;
  p = p * f - 2.500030398e-01f;
  p = p * f + 3.333333135e-01f;
  const float f2 = f * f;
  float r = (f2 * f * p + ef * -2.12194440e-4f) - 0.5f * f2 + f;
  r = r + ef * 0.693359375f;
  r = x == INFINITY ? x : r;
  r = x == 0.0f ? -INFINITY : r;
  return x >= 0.0f ? r : NAN;  // x < 0 and NaN
}
RV_VM_INLINE double log(double x) { return std::log(x); }

// ---- erfc, erf ----------------------------------------------------------------------------------
// erfc(z) = e^(-z^2) erfcx(z) for z >= 0, with erfcx(z) = q(t), t = 1 / (1 + z/2), q of degree 10
// (relative error 4e-8 for z in [0, 10.1], beyond which erfc underflows; about 3 ulp once
// evaluated in float). erfc(-z) = 2 - erfc(z). The two factors are public so that a caller that
// also needs e^(-z^2) (gelu's derivative: the normal pdf) computes that exp once.

// e^(z^2) erfc(z) for z in [0, 10.5] (callers clamp; beyond 10.5 erfc is 0 in float).
RV_VM_INLINE float erfcx_nonneg(float z) {
  const float t = 1.0f / (1.0f + 0.5f * z);
  float q = 2.746098861e-02f;
  q = q * t - 2.082200199e-01f;
  q = q * t + 6.363837123e-01f;
  q = q * t - 9.602006078e-01f;
  q = q * t + 6.780890226e-01f;
  q = q * t - 2.481855154e-01f;
  q = q * t + 2.837959826e-01f;
  q = q * t + 2.237848938e-01f;
  q = q * t + 2.852337062e-01f;
  q = q * t + 2.818495035e-01f;
  return q * t + 8.353905287e-06f;
}

// e^(-z^2), taking back the rounding error of z*z (exactly, via fma): near z = 9 that error
// alone would cost 100 ulp. z must be finite.
RV_VM_INLINE float exp_neg_square(float z) {
  const float zz = z * z;
  const float zz_err = std::fma(z, z, -zz);  // z^2 = zz + zz_err exactly
  return exp(-zz) * (1.0f - zz_err);
}

RV_VM_INLINE float erfc(float x) {
  float z = std::fabs(x);
  z = z > 10.5f ? 10.5f : z;  // erfc(10.5) is 0 in float; keeps z*z (and inf - inf) finite
  const float r = exp_neg_square(z) * erfcx_nonneg(z);
  return x < 0.0f ? 2.0f - r : r;
}
RV_VM_INLINE double erfc(double x) { return std::erfc(x); }

RV_VM_INLINE float erf(float x) {
  // |x| < 0.5: erf(x) = x + x q(x^2), q of degree 4 (q(0) = 2/sqrt(pi) - 1): the rounding errors
  // of q land on a term 8x smaller than the result.
  const float s = x * x;
  float q = 4.693147726e-03f;
  q = q * s - 2.674450912e-02f;
  q = q * s + 1.128261909e-01f;
  q = q * s - 3.761259913e-01f;
  q = q * s + 1.283791661e-01f;
  const float small = x + x * q;
  const float big = 1.0f - erfc(std::fabs(x));  // erfc(0.5) = 0.48: no cancellation
  return std::fabs(x) < 0.5f ? small : std::copysign(big, x);
}
RV_VM_INLINE double erf(double x) { return std::erf(x); }

// ---- normal_cdf_fast: Phi(x) for gelu, in PyTorch's accuracy class ------------------------------
// Phi(x) = P(N(0,1) <= x) = (1 + erf(x / sqrt 2)) / 2 with erf(x / sqrt 2) = x P(u) / Q(u), u = x^2,
// P and Q of degree 5 with positive coefficients (a rational fitted for this file, minimax on the
// absolute error of erf over |x| <= 5.5437, then rounded to float one coefficient at a time with
// the rest refitted). No exp: one division and 11 FMAs, about 2x cheaper than
// 0.5 erfc(-x / sqrt 2) above, which gelu used before.
// The price is relative accuracy in the lower tail: the error is absolute, at most 2.5e-7
// [1.7e-7] (test_vec_math.cpp), so Phi(-4) = 3.2e-5 comes out with ~0.5% relative error and
// Phi(-5) = 2.9e-7 with ~50%. PyTorch's float gelu computes 1 + erf in the same way (its erf is
// the Abramowitz-Stegun 7.1.26 form), with up to 1.3e-6 absolute error on gelu where this gives
// 1e-6 (tests/unit/test_activation.cpp measures both bars). Outside +-5.5437, where Phi is within
// 1.5e-8 of 0 or 1, it returns exactly 0 / 1 (and NaN for NaN).
RV_VM_INLINE float normal_cdf_fast(float x) {
  constexpr float kEnd = 5.5437f;  // 3.92 sqrt 2: where the fit ends and erf(x / sqrt 2) rounds to +-1
  const float u = x * x;
  float p = 4.507886330884503e-08f;
  p = p * u + 1.2707066161965486e-05f;
  p = p * u + 3.410690405871719e-04f;
  p = p * u + 9.374667890369892e-03f;
  p = p * u + 6.806052476167679e-02f;
  p = p * u + 7.97884464263916e-01f;  // sqrt(2 / pi): erf(x / sqrt 2) ~ x sqrt(2/pi) near 0
  float q = 1.1915153663721867e-06f;
  q = q * u + 7.414394349325448e-05f;
  q = q * u + 1.894082990474999e-03f;
  q = q * u + 2.874545380473137e-02f;
  q = q * u + 2.5196704268455505e-01f;
  q = q * u + 1.0f;
  const float mid = 0.5f + 0.5f * (x * p / q);  // u = inf (|x| huge) gives NaN here; selected away
  return x <= -kEnd ? 0.0f : (x >= kEnd ? 1.0f : mid);
}
RV_VM_INLINE double normal_cdf_fast(double x) { return 0.5 * std::erfc(x * -0.7071067811865476); }

// ---- tanh, sigmoid ------------------------------------------------------------------------------
// |x| < 0.625: |x| + |x|^3 p(x^2), p of degree 4; above: 1 - 2 / (e^(2|x|) + 1) (at least 0.55, so
// no cancellation), which reaches exactly 1 once e^(2|x|) overflows.
RV_VM_INLINE float tanh(float x) {
  const float s = x * x;
  float p = -6.096917670e-03f;
  p = p * s + 2.099728398e-02f;
  p = p * s - 5.385091528e-02f;
  p = p * s + 1.333276927e-01f;
  p = p * s - 3.333332837e-01f;
  const float z = std::fabs(x);
  const float small = z + z * s * p;  // on |x|, so that tanh(-0) = -0 after copysign
  const float big = 1.0f - 2.0f / (exp(z + z) + 1.0f);
  return std::copysign(z < 0.625f ? small : big, x);
}
RV_VM_INLINE double tanh(double x) { return std::tanh(x); }

// 1 / (1 + e^-x), through e = e^-|x| <= 1 (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e)
// below. Exactly 0 once e underflows (x < -104).
RV_VM_INLINE float sigmoid(float x) {
  const float e = exp(-std::fabs(x));
  const float r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}
// f64 keeps the textbook form (exp(-x) overflows to inf for x << 0, giving the right limit 0).
RV_VM_INLINE double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace rv::cpu::vm
