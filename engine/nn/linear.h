// linear.h: nn::Linear, y = x Wᵀ + b over the last dim (PyTorch's nn.Linear).
//
//   weight (out, in), bias (out) or none;  x (..., in) -> (..., out), e.g. (B, N, C) tokens.
//
// Default init as PyTorch's reset_parameters: kaiming_uniform_(a = sqrt 5), which is
// U(-1/sqrt(in), 1/sqrt(in)), for the weight, and the same bound for the bias; drawn from `gen`,
// weight first. (Models usually re-initialise, e.g. timm's ViT: trunc_normal_(.02) and zeros.)
#pragma once
#include "engine/nn/containers.h"
#include "engine/rng.h"

namespace rv::nn {

class Linear : public UnaryModule {
 public:
  Tensor weight;  // (out, in)
  Tensor bias;    // (out), undefined when bias = false

  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;  // x (..., in) -> (..., out)

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
};

}  // namespace rv::nn
