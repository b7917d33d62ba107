// activation.cpp: gelu, relu, silu, sigmoid, forward and backward.
//
// What is saved is what the derivative needs most cheaply: relu and sigmoid save their
// output (relu' = [y > 0], sigmoid' = y (1 - y)); gelu and silu need x itself. Each backward
// is one fused map over (grad, saved).
#include "engine/ops/activation.h"

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/cpu/elementwise_kernel.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

// 1 / (1 + exp(-v)). For very negative v, exp(-v) overflows to inf and the result is the
// correct limit 0 (never NaN), so no branch is needed.
template <class T>
inline T sigmoid_of(T v) {
  return T(1) / (T(1) + std::exp(-v));
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

}  // namespace

Tensor gelu(const Tensor& x, std::string_view approximate) {
  if (approximate == "none") {
    Tensor out = cpu::map_unary(x, "gelu", [](auto v) {
      using T = decltype(v);
      return T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));
    });
    // d/dx x Phi(x) = Phi(x) + x phi(x)
    record_activation("gelu", x, out, false, [](auto g, auto v) {
      using T = decltype(v);
      const T cdf = T(0.5) * (T(1) + std::erf(v * T(kSqrtHalf)));
      const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
      return g * (cdf + v * pdf);
    });
    return out;
  }
  if (approximate == "tanh") {
    // 0.5 x (1 + tanh(u)) computed as x * sigmoid(2u), the same function: 1 + tanh(u) =
    // 2 sigmoid(2u). One exp instead of tanh, and no cancellation in 1 + tanh(u) for x << 0.
    Tensor out = cpu::map_unary(x, "gelu", [](auto v) {
      using T = decltype(v);
      const T u = T(kGeluBeta) * (v + T(kGeluKappa) * v * v * v);
      return v * sigmoid_of(u + u);
    });
    // With s = sigmoid(2u) (so 1 + tanh u = 2s and 1 - tanh^2 u = 4 s (1 - s)), PyTorch's
    //   y' = (1 + tanh u) / 2 + x/2 (1 - tanh^2 u) beta (1 + 3 kappa x^2)
    // becomes y' = s + 2 x s (1 - s) beta (1 + 3 kappa x^2).
    record_activation("gelu", x, out, false, [](auto g, auto v) {
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
  Tensor out = cpu::map_unary(x, "silu", [](auto v) { return v * sigmoid_of(v); });
  // d/dx x s(x) = s + x s (1 - s) = s (1 + x (1 - s))
  record_activation("silu", x, out, false, [](auto g, auto v) {
    using T = decltype(v);
    const T s = sigmoid_of(v);
    return g * s * (T(1) + v * (T(1) - s));
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = cpu::map_unary(x, "sigmoid", [](auto v) { return sigmoid_of(v); });
  record_activation("sigmoid", x, out, true, [](auto g, auto y) { return g * y * (decltype(y)(1) - y); });
  return out;
}

}  // namespace rv
