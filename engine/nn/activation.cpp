// activation.cpp: the activation modules forward to the ops of engine/ops/activation.h.
#include "engine/nn/activation.h"

#include <stdexcept>

#include "engine/ops/activation.h"

namespace rv::nn {

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  if (approximate_ != "none" && approximate_ != "tanh")
    throw std::invalid_argument("GELU: approximate must be \"none\" or \"tanh\", got \"" + approximate_ + "\"");
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }
Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }

}  // namespace rv::nn
