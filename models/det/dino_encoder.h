// dino_encoder.h: DINO's deformable encoder (detrex's DINOTransformerEncoder, built of
// BaseTransformerLayers with operation_order (self_attn, norm, ffn, norm)).
//
// One layer, post-norm, on the flattened multi-scale tokens x (B, S, C), S = sum_l H_l W_l:
//   x = norms.0( MSDeformAttn(query = x, value = x, query_pos = pos, reference points) )   (+ x inside)
//   x = norms.1( FFN(x) )                                                                    (+ x inside)
// The deformable self-attention predicts its offsets and weights from x + pos and samples the values
// (x projected, zero on padding tokens) around each token's reference points: its own pixel centre,
// normalised by the valid part of each level (dino_geometry.h). pos already holds the level
// embeddings (DinoTransformer adds them).
//
// State dict (detrex's names): layers.<i>.attentions.0.{sampling_offsets, attention_weights,
// value_proj, output_proj}.{weight,bias}, layers.<i>.ffns.0.layers.{0.0,1}.{weight,bias},
// layers.<i>.norms.{0,1}.{weight,bias}. DINO's encoder has no final norm (post_norm = False).
#pragma once
#include <memory>

#include "engine/nn/containers.h"
#include "engine/nn/norm.h"
#include "engine/rng.h"
#include "models/det/detr_ffn.h"
#include "models/det/ms_deform_attn_module.h"

namespace rv::models::det {

struct DinoEncoderOptions {
  int64_t embed_dim = 256;         // C
  int64_t num_heads = 8;           // NH
  int64_t feedforward_dim = 2048;  // the FFN's hidden width
  double dropout = 0.0;            // attention output and FFN dropouts (DINO's configs: 0)
  int64_t num_layers = 6;
  int64_t num_levels = 4;          // L
  int64_t num_points = 4;          // P, sampling points per head and level
};

class DinoEncoderLayer : public nn::Module {
 public:
  std::shared_ptr<nn::ModuleList> attentions;  // [MultiScaleDeformableAttention]
  std::shared_ptr<nn::ModuleList> ffns;        // [DetrFFN]
  std::shared_ptr<nn::ModuleList> norms;       // [LayerNorm, LayerNorm]

  DinoEncoderLayer(const DinoEncoderOptions& options, Generator& gen);

  // x, pos (B, S, C); reference_points (B, S, L, 2); spatial_shapes (L, 2) i64; level_start_index (L)
  // i64; padding_mask (B, S) bool (true = padding) or undefined. -> (B, S, C)
  Tensor forward(const Tensor& x, const Tensor& pos, const Tensor& reference_points, const Tensor& spatial_shapes,
                 const Tensor& level_start_index, const Tensor& padding_mask);

  MultiScaleDeformableAttention& self_attn() const { return *attentions->get<MultiScaleDeformableAttention>(0); }
  std::string type_name() const override { return "BaseTransformerLayer"; }
};

class DinoTransformerEncoder : public nn::Module {
 public:
  std::shared_ptr<nn::ModuleList> layers;  // num_layers DinoEncoderLayer

  DinoTransformerEncoder(const DinoEncoderOptions& options, Generator& gen);

  // The layers in turn, each with the same pos, reference points and mask. -> memory (B, S, C)
  Tensor forward(const Tensor& x, const Tensor& pos, const Tensor& reference_points, const Tensor& spatial_shapes,
                 const Tensor& level_start_index, const Tensor& padding_mask);

  const DinoEncoderOptions& options() const { return opt_; }

 private:
  DinoEncoderOptions opt_;
};

}  // namespace rv::models::det
