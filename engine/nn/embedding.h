// embedding.h: nn::Embedding, a learned table of vectors picked by integer index.
//
//   weight (num_embeddings, dim);  indices (*S) int64/int32 in [0, num_embeddings) -> (*S, dim)
//
// Default init as PyTorch's: N(0, 1), drawn from `gen`. (No padding_idx or max_norm.) It is a
// UnaryModule, so it can open a Sequential (indices in, vectors out).
#pragma once
#include "engine/nn/containers.h"
#include "engine/rng.h"

namespace rv::nn {

class Embedding : public UnaryModule {
 public:
  Tensor weight;  // (num_embeddings, dim)

  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen);
  Tensor forward(const Tensor& indices) override;  // (*S) -> (*S, dim)

  int64_t num_embeddings() const { return num_; }
  int64_t embedding_dim() const { return dim_; }

 private:
  int64_t num_, dim_;
};

}  // namespace rv::nn
