// activation.cpp: gelu, relu, silu, sigmoid, forward and backward.
//
// What is saved is what the derivative needs most cheaply: relu and sigmoid save their
// output (relu' = [y > 0], sigmoid' = y (1 - y)); gelu and silu need x itself. Each backward
// is one fused map over (grad, saved).
//
// f32 (and bf16, computed in f32) uses the vectorisable exp / erfc / sigmoid of vec_math.h, so
// every map below compiles to SIMD code; f64 keeps libm (the vm:: double overloads), as gradient
// checks need it.
//
// GCC's tuning for this CPU family prefers 256-bit vectors; the maps here are compute-bound
// (erfc, exp) and run 1.4x faster with 512-bit ones (gelu ViT forward, one thread). Only a
// preference, and only where AVX-512 is enabled (GCC's option; clang and other ISAs skip it).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif
#include "engine/ops/activation.h"

#include <cmath>
#include <string>
#include <type_traits>

#include "engine/autograd.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/vec_math.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

// 1 / (1 + exp(-v)), exactly 0 / 1 far out and never NaN for finite v (vec_math.h).
template <class T>
RV_VM_INLINE T sigmoid_of(T v) {
  return cpu::vm::sigmoid(v);
}

template <class D>
void record_activation(const char* name, const Tensor& x, Tensor& out, bool save_output, D deriv) {
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor s = rec.save(save_output ? out : x);
    rec.finish(out, [s, deriv, name](const Tensor& g, const Needs&) -> Grads {
      return {cpu::map_binary(g, s, name, deriv)};
    });
  }
}

// Constants of the tanh approximation (PyTorch's names: kBeta = sqrt(2/pi), kKappa).
constexpr double kGeluBeta = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluKappa = 0.044715;
constexpr double kSqrtHalf = 0.7071067811865476;  // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.3989422804014327;  // 1 / sqrt(2 pi)

// Phi(v) = P(N(0,1) <= v), the standard normal CDF. In f32 it is 0.5 erfc(-v / sqrt 2): erfc keeps
// full relative precision in the tail, where 1 + erf(v / sqrt 2) would cancel (v << 0). f64 keeps
// the textbook 1 + erf form and libm.
RV_VM_INLINE float normal_cdf(float v) { return 0.5f * cpu::vm::erfc(v * -float(kSqrtHalf)); }
RV_VM_INLINE double normal_cdf(double v) { return 0.5 * (1.0 + std::erf(v * kSqrtHalf)); }

// Phi(v) + v phi(v) in f32 with one exp: for z = |v| / sqrt 2, e^(-z^2) is both the normal pdf
// (times sqrt(2 pi)) and the factor of erfc(z) = e^(-z^2) erfcx(z) that gives the CDF's tail.
RV_VM_INLINE float gelu_grad_f32(float v) {
  float z = std::fabs(v) * float(kSqrtHalf);
  z = z > 10.5f ? 10.5f : z;  // the tail and the pdf are 0 in float beyond (and inf stays finite)
  const float e = cpu::vm::exp_neg_square(z);
  const float tail = 0.5f * e * cpu::vm::erfcx_nonneg(z);  // Phi(-|v|)
  const float cdf = v < 0.0f ? tail : 1.0f - tail;
  return cdf + v * (float(kInvSqrt2Pi) * e);
}

}  // namespace

Tensor gelu(const Tensor& x, std::string_view approximate) {
  if (approximate == "none") {
    Tensor out = cpu::map_unary(x, "gelu", [](auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      if constexpr (std::is_same_v<T, double>)
        return T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));  // f64: unchanged, libm
      else
        return v * normal_cdf(v);
    });
    // d/dx x Phi(x) = Phi(x) + x phi(x)
    record_activation("gelu", x, out, false, [](auto g, auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      if constexpr (std::is_same_v<T, double>) {
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        return g * (normal_cdf(v) + v * pdf);
      } else {
        return g * gelu_grad_f32(v);
      }
    });
    return out;
  }
  if (approximate == "tanh") {
    // 0.5 x (1 + tanh(u)) computed as x * sigmoid(2u), the same function: 1 + tanh(u) =
    // 2 sigmoid(2u). One exp instead of tanh, and no cancellation in 1 + tanh(u) for x << 0.
    Tensor out = cpu::map_unary(x, "gelu", [](auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      const T u = T(kGeluBeta) * (v + T(kGeluKappa) * v * v * v);
      return v * sigmoid_of(u + u);
    });
    // With s = sigmoid(2u) (so 1 + tanh u = 2s and 1 - tanh^2 u = 4 s (1 - s)), PyTorch's
    //   y' = (1 + tanh u) / 2 + x/2 (1 - tanh^2 u) beta (1 + 3 kappa x^2)
    // becomes y' = s + 2 x s (1 - s) beta (1 + 3 kappa x^2).
    record_activation("gelu", x, out, false, [](auto g, auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      const T v2 = v * v;
      const T u = T(kGeluBeta) * (v + T(kGeluKappa) * v2 * v);
      const T s = sigmoid_of(u + u);
      return g * (s + T(2) * v * s * (T(1) - s) * T(kGeluBeta) * (T(1) + T(3 * kGeluKappa) * v2));
    });
    return out;
  }
  throw std::invalid_argument("gelu: approximate must be \"none\" or \"tanh\", got \"" + std::string(approximate) +
                              "\"");
}

Tensor relu(const Tensor& x) {
  // Tests v <= 0 (not v > 0) so that NaN, which compares false, passes through as in PyTorch.
  Tensor out = cpu::map_unary(x, "relu", [](auto v) { return v <= decltype(v)(0) ? decltype(v)(0) : v; });
  record_activation("relu", x, out, true, [](auto g, auto y) { return y > decltype(y)(0) ? g : decltype(y)(0); });
  return out;
}

Tensor silu(const Tensor& x) {
  Tensor out = cpu::map_unary(x, "silu", [](auto v) RV_VM_LAMBDA { return v * sigmoid_of(v); });
  // d/dx x s(x) = s + x s (1 - s) = s (1 + x (1 - s))
  record_activation("silu", x, out, false, [](auto g, auto v) RV_VM_LAMBDA {
    using T = decltype(v);
    const T s = sigmoid_of(v);
    return g * s * (T(1) + v * (T(1) - s));
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = cpu::map_unary(x, "sigmoid", [](auto v) RV_VM_LAMBDA { return sigmoid_of(v); });
  record_activation("sigmoid", x, out, true, [](auto g, auto y) { return g * y * (decltype(y)(1) - y); });
  return out;
}

}  // namespace rv
