// detr_ffn.cpp: DetrFFN (detr_ffn.h).
#include "models/det/detr_ffn.h"

#include <stdexcept>
#include <string>

#include "engine/nn/activation.h"
#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/ops/elementwise.h"

namespace rv::models::det {

DetrFFN::DetrFFN(int64_t embed_dim, int64_t feedforward_dim, double ffn_drop, Generator& gen) {
  if (embed_dim <= 0 || feedforward_dim <= 0)
    throw std::invalid_argument("FFN: expected positive embed_dim and feedforward_dim, got " +
                                std::to_string(embed_dim) + " and " + std::to_string(feedforward_dim));
  layers = register_module("layers", std::make_shared<nn::Sequential>());
  auto first = layers->push_back(std::make_shared<nn::Sequential>());
  first->push_back(std::make_shared<nn::Linear>(embed_dim, feedforward_dim, gen));
  first->push_back(std::make_shared<nn::ReLU>());
  first->push_back(std::make_shared<nn::Dropout>(ffn_drop));
  layers->push_back(std::make_shared<nn::Linear>(feedforward_dim, embed_dim, gen));
  layers->push_back(std::make_shared<nn::Dropout>(ffn_drop));
}

Tensor DetrFFN::forward(const Tensor& x) { return add(x, layers->forward(x)); }

}  // namespace rv::models::det
