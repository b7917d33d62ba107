// activation.h: the pointwise nonlinearities of the models: gelu (exact and tanh forms),
// relu, silu and sigmoid. Each is differentiable; bf16/f16 compute in f32 and round once.
#pragma once
#include <string_view>

#include "engine/tensor.h"

namespace rv {

// approximate = "none": x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (nn.GELU's default);
// approximate = "tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor gelu(const Tensor& x, std::string_view approximate = "none");
Tensor relu(const Tensor& x);     // gradient 0 at x == 0, as PyTorch
Tensor silu(const Tensor& x);     // x * sigmoid(x)
Tensor sigmoid(const Tensor& x);  // 1 / (1 + exp(-x)), without overflow for large |x|

}  // namespace rv
