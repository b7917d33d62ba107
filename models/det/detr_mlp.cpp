// detr_mlp.cpp: DetrMLP (detr_mlp.h): Linears with ReLU between them.
#include "models/det/detr_mlp.h"

#include <stdexcept>
#include <string>

#include "engine/ops/activation.h"

namespace rv::models::det {

DetrMLP::DetrMLP(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers, Generator& gen) {
  if (num_layers < 1 || input_dim <= 0 || output_dim <= 0 || (num_layers > 1 && hidden_dim <= 0))
    throw std::invalid_argument("MLP: expected num_layers >= 1 and positive dims, got num_layers " +
                                std::to_string(num_layers) + ", dims " + std::to_string(input_dim) + " -> " +
                                std::to_string(hidden_dim) + " -> " + std::to_string(output_dim));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    const int64_t in = i == 0 ? input_dim : hidden_dim, out = i == num_layers - 1 ? output_dim : hidden_dim;
    layers->push_back(std::make_shared<nn::Linear>(in, out, gen));
  }
}

Tensor DetrMLP::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    y = layer(i).forward(y);
    if (i + 1 < layers->size()) y = relu(y);  // no activation after the last Linear
  }
  return y;
}

}  // namespace rv::models::det
