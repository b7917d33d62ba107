// activation.h: parameter-free layers as modules: Identity, GELU, ReLU, SiLU.
//
// They have no state, so they add nothing to a state dict; they exist so that a model can hold
// them as children (timm's Mlp has an `act` child) and put them in a Sequential, where they keep
// PyTorch's indices (`head.0.weight`, `head.2.weight` around a GELU at index 1).
#pragma once
#include <string>

#include "engine/nn/containers.h"

namespace rv::nn {

// Returns its input (the same tensor). timm uses it wherever an optional layer is off.
class Identity : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

// approximate: "none" (erf form, nn.GELU's default) or "tanh"; checked when constructed.
class GELU : public UnaryModule {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;
  const std::string& approximate() const { return approximate_; }

 private:
  std::string approximate_;
};

class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

class SiLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace rv::nn
