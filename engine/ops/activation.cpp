// activation.cpp: gelu, relu, silu, sigmoid, forward and backward.
//
// What is saved is what the derivative needs most cheaply: relu and sigmoid save their
// output (relu' = [y > 0], sigmoid' = y (1 - y)); gelu and silu need x itself. Each backward
// is one fused map over (grad, saved).
//
// f32 (and bf16, computed in f32) uses the vectorisable exp / sigmoid / normal_cdf_fast of
// vec_math.h, so every map below compiles to SIMD code; f64 keeps libm, as gradient checks need
// it. gelu's f32 normal CDF is a rational without exp (2x cheaper than erfc), accurate to 2.5e-7
// absolute like PyTorch's own float gelu, not to a few ulp in the lower tail (see vec_math.h).
//
// GCC's tuning for this CPU family prefers 256-bit vectors; the maps here are compute-bound
// (exp, divisions) and run 1.4x faster with 512-bit ones (gelu ViT forward, one thread). Only a
// preference, and only where AVX-512 is enabled (GCC's option; clang and other ISAs skip it).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif
#include "engine/ops/activation.h"

#include <cmath>
#include <string>
#include <type_traits>

#include "engine/autograd.h"
#include "engine/backend.h"
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

// gelu' = Phi(v) + v phi(v) in f32: Phi from the rational of vec_math.h (no exp), the normal pdf
// phi(v) = e^(-v^2/2) / sqrt(2 pi) from vm::exp. Absolute error ~5e-7, PyTorch's accuracy class
// (test_activation.cpp measures it); f64 keeps libm.
RV_VM_INLINE float gelu_grad_f32(float v) {
  return cpu::vm::normal_cdf_fast(v) + v * (float(kInvSqrt2Pi) * cpu::vm::exp(-0.5f * (v * v)));
}

// The device path (x not on the CPU): forward and backward both through the backend's kernels;
// the backward reads what the CPU path saves (x, or the output for relu and sigmoid).
Tensor device_activation(backend::DeviceBackend::Activation a, const Tensor& x) {
  using B = backend::DeviceBackend;
  Tensor out = backend::get(x.device()).activation_forward(a, x);
  if (auto rec = autograd::Recorder(B::activation_name(a), {x})) {
    Tensor s = rec.save(B::activation_saves_output(a) ? out : x);
    rec.finish(out, [s, a](const Tensor& g, const Needs&) -> Grads {
      return {backend::get(s.device()).activation_backward(a, s, g)};
    });
  }
  return out;
}

}  // namespace

Tensor gelu(const Tensor& x, std::string_view approximate) {
  if (!x.device().is_cpu() && (approximate == "none" || approximate == "tanh"))
    return device_activation(approximate == "none" ? backend::DeviceBackend::Activation::gelu
                                                   : backend::DeviceBackend::Activation::gelu_tanh,
                             x);
  if (approximate == "none") {
    Tensor out = cpu::map_unary(x, "gelu", [](auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      if constexpr (std::is_same_v<T, double>)
        return T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));  // f64: unchanged, libm
      else
        return v * cpu::vm::normal_cdf_fast(v);  // x Phi(x): see normal_cdf_fast for its accuracy
    });
    // d/dx x Phi(x) = Phi(x) + x phi(x)
    record_activation("gelu", x, out, false, [](auto g, auto v) RV_VM_LAMBDA {
      using T = decltype(v);
      if constexpr (std::is_same_v<T, double>) {
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        return g * (T(0.5) * (T(1) + std::erf(v * T(kSqrtHalf))) + v * pdf);
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
  if (!x.device().is_cpu()) return device_activation(backend::DeviceBackend::Activation::relu, x);
  // Tests v <= 0 (not v > 0) so that NaN, which compares false, passes through as in PyTorch.
  Tensor out = cpu::map_unary(x, "relu", [](auto v) { return v <= decltype(v)(0) ? decltype(v)(0) : v; });
  record_activation("relu", x, out, true, [](auto g, auto y) { return y > decltype(y)(0) ? g : decltype(y)(0); });
  return out;
}

Tensor silu(const Tensor& x) {
  if (!x.device().is_cpu()) return device_activation(backend::DeviceBackend::Activation::silu, x);
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
  if (!x.device().is_cpu()) return device_activation(backend::DeviceBackend::Activation::sigmoid, x);
  Tensor out = cpu::map_unary(x, "sigmoid", [](auto v) RV_VM_LAMBDA { return sigmoid_of(v); });
  record_activation("sigmoid", x, out, true, [](auto g, auto y) { return g * y * (decltype(y)(1) - y); });
  return out;
}

}  // namespace rv
