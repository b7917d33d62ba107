// vm::exp, exp_ftz, log, erf, erfc, tanh, sigmoid, normal_cdf_fast (engine/cpu/vec_math.h) against double-precision libm:
// the maximum error in ulp over dense sweeps of float inputs, the special values (+-0, +-inf, NaN,
// huge, tiny, subnormal), and the bounds the header documents.
//
// Two sweeps per function: one over the float bit patterns (2^20 evenly spaced patterns per sign,
// so every binade from subnormals to the largest floats is visited), and 2^20 evenly spaced values
// over the range where the function is not constant in float. The error of y against the double
// result ref is |y - ref| / ulp(ref), with ulp(ref) the spacing of floats at |ref| (2^-149 for
// subnormal ref).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/cpu/vec_math.h"
#include "tests/support/check.h"

namespace vm = rv::cpu::vm;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kDenormMin = std::numeric_limits<float>::denorm_min();
constexpr float kMin = std::numeric_limits<float>::min();  // smallest normal
constexpr float kMax = std::numeric_limits<float>::max();

double ulp_of(double ref) {
  const double a = std::fabs(ref);
  if (a < double(kMin)) return double(kDenormMin);
  int e = 0;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  return std::ldexp(1.0, e - 24);
}

// 2^20 bit patterns evenly spaced over [0, +inf), with the given sign.
std::vector<float> bit_sweep(bool negative) {
  std::vector<float> v;
  const uint32_t n = 1u << 20, top = 0x7F800000u;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t bits = uint32_t(uint64_t(top) * k / n) | (negative ? 0x80000000u : 0u);
    v.push_back(std::bit_cast<float>(bits));
  }
  return v;
}

std::vector<float> linear_sweep(float lo, float hi) {
  std::vector<float> v;
  const int n = 1 << 20;
  for (int k = 0; k <= n; ++k) v.push_back(lo + (hi - lo) * float(double(k) / n));
  return v;
}

struct Worst {
  double ulp = 0;
  float x = 0;
};

// Max ulp error of f against ref over xs, skipping inputs where keep(x, ref) is false.
template <class F, class R, class K>
Worst max_ulp(const std::vector<float>& xs, F f, R ref, K keep) {
  Worst w;
  for (float x : xs) {
    const double r = ref(double(x));
    if (!std::isfinite(r) || !keep(x, r)) continue;
    const float y = f(x);
    const double e = std::isfinite(y) ? std::fabs(double(y) - r) / ulp_of(r) : 1e30;
    if (e > w.ulp) w = {e, x};
  }
  return w;
}

template <class F, class R, class K>
void check_sweeps(const char* name, F f, R ref, K keep, float lo, float hi, double bound) {
  Worst w = max_ulp(bit_sweep(false), f, ref, keep);
  Worst wn = max_ulp(bit_sweep(true), f, ref, keep);
  Worst wl = max_ulp(linear_sweep(lo, hi), f, ref, keep);
  if (wn.ulp > w.ulp) w = wn;
  if (wl.ulp > w.ulp) w = wl;
  MESSAGE(std::string(name) << ": max error " << w.ulp << " ulp at x = " << w.x << " (bound " << bound << ")");
  CHECK_MESSAGE(w.ulp <= bound, std::string(name) << ": " << w.ulp << " ulp at x = " << w.x);
}

auto any = [](float, double) { return true; };
auto normal_result = [](float, double r) { return std::fabs(r) >= double(kMin) && std::fabs(r) <= double(kMax); };

// The loop shape the ops use, so that a vectorised build of it is what the sweep tests.
template <class F>
std::vector<float> map(const std::vector<float>& xs, F f) {
  std::vector<float> y(xs.size());
  const float* xp = xs.data();
  float* yp = y.data();
  for (size_t i = 0; i < xs.size(); ++i) yp[i] = f(xp[i]);
  return y;
}

}  // namespace

TEST_CASE("vm::exp: <= 2 ulp for normal results, subnormals within one step, limits") {
  check_sweeps(
      "exp", [](float x) { return vm::exp(x); }, [](double x) { return std::exp(x); }, normal_result, -87.3f,
      88.72f, 2.0);
  // Subnormal results: the final product rounds once, so the error is at most a subnormal step
  // (plus the 2 ulp of the polynomial, which is less than a step there).
  double worst = 0;
  for (float x : linear_sweep(-103.9f, -87.34f))
    worst = std::max(worst, std::fabs(double(vm::exp(x)) - std::exp(double(x))) / double(kDenormMin));
  CHECK(worst <= 1.0);
  CHECK(vm::exp(0.0f) == 1.0f);
  CHECK(vm::exp(-0.0f) == 1.0f);
  CHECK(vm::exp(kInf) == kInf);
  CHECK(vm::exp(-kInf) == 0.0f);
  CHECK(vm::exp(88.73f) == kInf);
  CHECK(vm::exp(1e30f) == kInf);
  CHECK(vm::exp(-104.0f) == 0.0f);
  CHECK(vm::exp(-1e30f) == 0.0f);
  CHECK(vm::exp(kDenormMin) == 1.0f);
  volatile float top = 88.7f;  // the top binade (n = 128, applied as 2^64 2^64)
  MESSAGE("exp(88.7) = " << vm::exp(top) << " want " << std::exp(double(top)));
  CHECK(std::fabs(vm::exp(top) / std::exp(double(top)) - 1) < 3e-7);
  CHECK(std::isnan(vm::exp(kNaN)));
}

TEST_CASE("vm::exp_ftz: <= 2 ulp on [-87.33, 88]; exactly 0 below; -inf, NaN") {
  // Its domain is x <= 88 (softmax passes x - max <= 0): the bit sweeps keep only those inputs.
  auto in_domain = [](float x, double r) { return x <= 88.0f && x >= -87.33f && r >= double(kMin); };
  check_sweeps(
      "exp_ftz", [](float x) { return vm::exp_ftz(x); }, [](double x) { return std::exp(x); }, in_domain, -87.33f,
      88.0f, 2.0);
  for (float x : linear_sweep(-200.0f, -87.34f)) CHECK_MESSAGE(vm::exp_ftz(x) == 0.0f, "x = " << x);
  CHECK(vm::exp_ftz(0.0f) == 1.0f);
  CHECK(vm::exp_ftz(-0.0f) == 1.0f);
  CHECK(vm::exp_ftz(-kInf) == 0.0f);
  CHECK(vm::exp_ftz(-1e30f) == 0.0f);
  CHECK(vm::exp_ftz(-87.3f) > 0.0f);
  CHECK(std::isnan(vm::exp_ftz(kNaN)));
  // Where both give a normal float they agree to within the 2-ulp bounds of each.
  for (float x : {-87.0f, -50.5f, -10.25f, -1.0f, -1e-3f, 0.5f, 10.0f, 80.0f})
    CHECK(std::fabs(double(vm::exp_ftz(x)) / double(vm::exp(x)) - 1) < 5e-7);
}

TEST_CASE("vm::log: <= 2 ulp over all positive floats including subnormals; log(0), log(<0), inf, NaN") {
  check_sweeps(
      "log", [](float x) { return vm::log(x); }, [](double x) { return std::log(x); }, any, 0.25f, 4.0f, 2.0);
  CHECK(vm::log(1.0f) == 0.0f);
  CHECK(vm::log(0.0f) == -kInf);
  CHECK(vm::log(-0.0f) == -kInf);
  CHECK(std::isnan(vm::log(-1.0f)));
  CHECK(std::isnan(vm::log(-kDenormMin)));
  CHECK(std::isnan(vm::log(-kInf)));
  CHECK(std::isnan(vm::log(kNaN)));
  CHECK(vm::log(kInf) == kInf);
  CHECK(vm::log(kDenormMin) == doctest::Approx(std::log(double(kDenormMin))).epsilon(2e-7));
  CHECK(vm::log(kMax) == doctest::Approx(std::log(double(kMax))).epsilon(2e-7));
}

TEST_CASE("vm::erf: <= 2.5 ulp everywhere; vm::erfc: <= 6 ulp for normal results") {
  check_sweeps(
      "erf", [](float x) { return vm::erf(x); }, [](double x) { return std::erf(x); }, any, -4.0f, 4.0f, 2.5);
  check_sweeps(
      "erfc", [](float x) { return vm::erfc(x); }, [](double x) { return std::erfc(x); }, normal_result, -4.0f,
      9.2f, 6.0);
  CHECK(vm::erf(0.0f) == 0.0f);
  CHECK(std::signbit(vm::erf(-0.0f)));
  CHECK(vm::erf(kInf) == 1.0f);
  CHECK(vm::erf(-kInf) == -1.0f);
  CHECK(vm::erf(1e30f) == 1.0f);
  CHECK(vm::erf(kDenormMin) == doctest::Approx(double(kDenormMin) * 1.1283791670955126).epsilon(1e-6));
  CHECK(std::isnan(vm::erf(kNaN)));
  CHECK(vm::erfc(0.0f) == 1.0f);
  CHECK(vm::erfc(kInf) == 0.0f);
  CHECK(vm::erfc(-kInf) == 2.0f);
  CHECK(vm::erfc(11.0f) == 0.0f);
  CHECK(vm::erfc(-1e30f) == 2.0f);
  CHECK(std::isnan(vm::erfc(kNaN)));
}

TEST_CASE("vm::normal_cdf_fast: absolute error <= 2.5e-7 everywhere; exactly 0 / 1 far out; NaN") {
  // Absolute, not ulp: the bound this approximation is built for (see vec_math.h). The sweeps are
  // the same as for the ulp bounds: all binades of both signs, and a dense one over [-8, 8].
  double worst = 0;
  float worst_x = 0;
  for (const auto& xs : {bit_sweep(false), bit_sweep(true), linear_sweep(-8.0f, 8.0f)}) {
    const std::vector<float> y = map(xs, [](float x) { return vm::normal_cdf_fast(x); });
    for (size_t i = 0; i < xs.size(); ++i) {
      if (std::isnan(xs[i])) continue;
      const double ref = 0.5 * std::erfc(-double(xs[i]) / std::sqrt(2.0));
      const double e = std::fabs(double(y[i]) - ref);
      if (!(e <= worst)) worst = e, worst_x = xs[i];  // NaN y counts as the worst
    }
  }
  MESSAGE("normal_cdf_fast: max absolute error " << worst << " at x = " << worst_x << " (bound 2.5e-7)");
  CHECK(worst <= 2.5e-7);
  CHECK(vm::normal_cdf_fast(0.0f) == 0.5f);
  CHECK(vm::normal_cdf_fast(-5.6f) == 0.0f);
  CHECK(vm::normal_cdf_fast(5.6f) == 1.0f);
  CHECK(vm::normal_cdf_fast(-kInf) == 0.0f);
  CHECK(vm::normal_cdf_fast(kInf) == 1.0f);
  CHECK(vm::normal_cdf_fast(kMax) == 1.0f);
  CHECK(std::isnan(vm::normal_cdf_fast(kNaN)));
}

TEST_CASE("vm::tanh: <= 3 ulp everywhere; vm::sigmoid: <= 3 ulp for normal results; exact limits, no NaN") {
  check_sweeps(
      "tanh", [](float x) { return vm::tanh(x); }, [](double x) { return std::tanh(x); }, any, -10.0f, 10.0f, 3.0);
  check_sweeps(
      "sigmoid", [](float x) { return vm::sigmoid(x); }, [](double x) { return 1.0 / (1.0 + std::exp(-x)); },
      normal_result, -90.0f, 20.0f, 3.0);
  CHECK(vm::tanh(0.0f) == 0.0f);
  CHECK(std::signbit(vm::tanh(-0.0f)));
  CHECK(vm::tanh(kInf) == 1.0f);
  CHECK(vm::tanh(-kInf) == -1.0f);
  CHECK(vm::tanh(kMax) == 1.0f);
  CHECK(vm::tanh(kDenormMin) == kDenormMin);
  CHECK(std::isnan(vm::tanh(kNaN)));
  CHECK(vm::sigmoid(0.0f) == 0.5f);
  CHECK(vm::sigmoid(kInf) == 1.0f);
  CHECK(vm::sigmoid(-kInf) == 0.0f);
  CHECK(vm::sigmoid(-200.0f) == 0.0f);
  CHECK(vm::sigmoid(200.0f) == 1.0f);
  CHECK(vm::sigmoid(-kMax) == 0.0f);
  CHECK(std::isnan(vm::sigmoid(kNaN)));
}

TEST_CASE("vec_math in a vectorised loop gives the same bits as one call at a time") {
  // The loop in map() is vectorised at -O3; a lane must compute exactly what the scalar call does
  // (same operations, same rounding), or op results would depend on where a row starts.
  const std::vector<float> xs = linear_sweep(-12.0f, 12.0f);
  const float special[] = {0.0f, -0.0f, kInf, -kInf, kNaN, kDenormMin, -kDenormMin, kMax, -kMax, 1e-30f};
  std::vector<float> all(xs);
  all.insert(all.end(), std::begin(special), std::end(special));
  auto same = [&](const char* name, auto f) {
    std::vector<float> y = map(all, f);
    size_t bad = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      volatile float x = all[i];  // a scalar call the compiler cannot fold into the loop
      const float s = f(x);
      if (std::bit_cast<uint32_t>(s) != std::bit_cast<uint32_t>(y[i]) && !(std::isnan(s) && std::isnan(y[i]))) ++bad;
    }
    CHECK_MESSAGE(bad == 0, std::string(name) << ": " << bad << " lanes differ from the scalar call");
  };
  same("exp", [](float x) { return vm::exp(x); });
  same("exp_ftz", [](float x) { return vm::exp_ftz(x < 88.0f ? x : 88.0f); });
  same("log", [](float x) { return vm::log(std::fabs(x)); });
  same("erf", [](float x) { return vm::erf(x); });
  same("erfc", [](float x) { return vm::erfc(x); });
  same("tanh", [](float x) { return vm::tanh(x); });
  same("sigmoid", [](float x) { return vm::sigmoid(x); });
  same("normal_cdf_fast", [](float x) { return vm::normal_cdf_fast(x); });
}

TEST_CASE("vec_math double overloads are libm") {
  for (double x : {-3.5, -0.25, 0.0, 0.7, 2.0, 30.0}) {
    CHECK(vm::exp(x) == std::exp(x));
    CHECK(vm::erf(x) == std::erf(x));
    CHECK(vm::erfc(x) == std::erfc(x));
    CHECK(vm::tanh(x) == std::tanh(x));
    CHECK(vm::sigmoid(x) == 1.0 / (1.0 + std::exp(-x)));
    if (x > 0) CHECK(vm::log(x) == std::log(x));
  }
}
