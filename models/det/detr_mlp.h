// detr_mlp.h: DetrMLP, the small multi-layer perceptron of the DETR family (detrex's layers.MLP,
// DINO's ref_point_head and bbox_embed heads).
//
//   x (..., in) -> Linear -> ReLU -> Linear -> ReLU -> ... -> Linear -> (..., out)
//   num_layers Linears: in -> hidden, (num_layers - 2) x hidden -> hidden, hidden -> out;
//   a ReLU after every one but the last.
//
// State dict: layers.0.weight, layers.0.bias, ..., layers.<n-1>.bias (detrex's names: a ModuleList of
// Linears with the ReLU applied in forward, so the indices count Linears only). Initialisation:
// PyTorch's default Linear init from `gen`, layer 0 first (DINO re-initialises the heads; see
// dino_decoder.h).
#pragma once
#include <memory>

#include "engine/nn/containers.h"
#include "engine/nn/linear.h"
#include "engine/rng.h"

namespace rv::models::det {

class DetrMLP : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::ModuleList> layers;  // num_layers nn::Linear

  DetrMLP(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers, Generator& gen);
  Tensor forward(const Tensor& x) override;  // (..., in) -> (..., out)

  nn::Linear& layer(size_t i) const { return *layers->get<nn::Linear>(i); }
  size_t num_layers() const { return layers->size(); }
  std::string type_name() const override { return "MLP"; }
};

}  // namespace rv::models::det
