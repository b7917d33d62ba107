// embedding.cpp: nn::Embedding — N(0, 1) init and forward through rv::embedding.
#include "engine/nn/embedding.h"

#include <stdexcept>
#include <string>

#include "engine/nn/init.h"
#include "engine/ops/index.h"

namespace rv::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen)
    : num_(num_embeddings), dim_(embedding_dim) {
  if (num_ < 0 || dim_ < 0)
    throw std::invalid_argument("Embedding: expected non-negative sizes, got " + std::to_string(num_) + " x " +
                                std::to_string(dim_));
  weight = register_parameter("weight", empty({num_, dim_}));
  init::normal_(weight, gen);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices); }

}  // namespace rv::nn
