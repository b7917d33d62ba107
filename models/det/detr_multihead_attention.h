// detr_multihead_attention.h: the self-attention of DINO's decoder layers, as detrex builds it:
//
//   TorchMultiheadAttention   PyTorch's nn.MultiheadAttention (batch_first=True): q, k, v projected by
//                             the three row blocks of one in_proj_weight (3C, C), NH heads of HD = C / NH,
//                             softmax(q kᵀ / sqrt(HD)) v, then out_proj. Masks follow PyTorch: a bool
//                             attn_mask (Nq, Nk) and a key_padding_mask (B, Nk), true = blocked.
//   DetrMultiheadAttention    detrex's layers.MultiheadAttention wrapper: self-attention with the
//                             positional query added to q and k (not to v), dropout on the output
//                             and the residual:  x + proj_drop(attn(x + pos, x + pos, x)).
//
// State dict: attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias, as a
// detrex checkpoint's `decoder.layers.i.attentions.0.attn.*`. Initialisation as PyTorch's
// _reset_parameters: in_proj_weight xavier_uniform, in_proj_bias and out_proj.bias zero, out_proj.weight
// Linear's default.
//
// DINO's denoising groups come in through attn_mask: the Q_dn denoising queries sit in front of the
// matching queries, and mask[i, j] = true keeps query i from looking at query j (another group, or a
// matching query looking at the denoising ones). A row blocked everywhere gives zeros here (PyTorch
// gives NaN); DINO's masks never block a whole row.
#pragma once
#include <memory>

#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "engine/rng.h"

namespace rv::models::det {

class TorchMultiheadAttention : public nn::Module {
 public:
  Tensor in_proj_weight;                   // (3C, C): rows [0, C) make q, [C, 2C) k, [2C, 3C) v
  Tensor in_proj_bias;                     // (3C)
  std::shared_ptr<nn::Linear> out_proj;    // (C, C)
  std::shared_ptr<nn::Dropout> attn_drop;  // on the probabilities (holds no state: not in the state dict)

  TorchMultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout, Generator& gen);

  // query (B, Nq, C), key and value (B, Nk, C) -> (B, Nq, C). attn_mask: bool (Nq, Nk), true = blocked;
  // key_padding_mask: bool (B, Nk), true = padding. Either may be undefined. Dropout on the attention
  // probabilities in training mode only.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor());

  int64_t embed_dim() const { return C_; }
  int64_t num_heads() const { return NH_; }
  std::string type_name() const override { return "MultiheadAttention"; }

 private:
  int64_t C_, NH_;
};

class DetrMultiheadAttention : public nn::Module {
 public:
  std::shared_ptr<TorchMultiheadAttention> attn;
  std::shared_ptr<nn::Dropout> proj_drop;

  DetrMultiheadAttention(int64_t embed_dim, int64_t num_heads, double attn_drop, double proj_drop, Generator& gen);

  // Self-attention: x (B, N, C), query_pos (B, N, C) or undefined, masks as TorchMultiheadAttention's
  // (Nk = N). -> (B, N, C), the residual included.
  Tensor forward(const Tensor& x, const Tensor& query_pos, const Tensor& attn_mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor());

  std::string type_name() const override { return "MultiheadAttention"; }
};

}  // namespace rv::models::det
