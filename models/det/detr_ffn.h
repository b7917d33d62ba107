// detr_ffn.h: DetrFFN, the feed-forward block of detrex's transformer layers (detrex's layers.FFN with
// num_fcs = 2 and add_identity), as DINO's encoder and decoder layers use it.
//
//   x (B, N, C) -> Linear(C, F) -> ReLU -> Dropout -> Linear(F, C) -> Dropout -> + x
//
// State dict: layers.0.0.{weight,bias} (the first Linear, inside a Sequential with the ReLU and the
// dropout) and layers.1.{weight,bias} (the second): detrex's names, so a checkpoint's
// `...ffns.0.layers.0.0.weight` loads as it is. The residual is part of the block (detrex adds the
// identity inside FFN.forward); the post-norm after it belongs to the layer.
#pragma once
#include <memory>

#include "engine/nn/containers.h"
#include "engine/rng.h"

namespace rv::models::det {

class DetrFFN : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::Sequential> layers;  // [Sequential[Linear(C, F), ReLU, Dropout], Linear(F, C), Dropout]

  // embed_dim C, feedforward_dim F; Linears with PyTorch's default init drawn from `gen`.
  DetrFFN(int64_t embed_dim, int64_t feedforward_dim, double ffn_drop, Generator& gen);
  Tensor forward(const Tensor& x) override;  // (..., C) -> (..., C), residual included

  std::string type_name() const override { return "FFN"; }
};

}  // namespace rv::models::det
