// dino_decoder.h: DINO's decoder with iterative box refinement and look-forward-twice (detrex's
// DINOTransformerDecoder, its layers BaseTransformerLayers with operation_order (self_attn, norm,
// cross_attn, norm, ffn, norm)), holding the class and box heads of every layer and of the encoder.
//
// One layer, post-norm, on the queries x (B, Q, C):
//   x = norms.0( x + MHA(q = k = x + query_pos, v = x, attn_mask) )                (self-attention)
//   x = norms.1( MSDeformAttn(query = x + query_pos, value = memory, reference boxes) )  (+ x inside)
//   x = norms.2( FFN(x) )                                                            (+ x inside)
// attn_mask (Q, Q) bool, true = blocked: the contrastive denoising queries sit in front of the
// matching ones, and the mask keeps the groups apart and the matching queries from seeing them.
//
// The stack, with reference boxes ref_0 (B, Q, 4) (cx, cy, w, h) in [0, 1], detached:
//   for layer i:  ref_in  = ref_i * (valid_w, valid_h, valid_w, valid_h) per level   (B, Q, L, 4)
//                 query_pos = ref_point_head( sine embedding of ref_in's level 0 )   (2C -> C -> C)
//                 x = layer_i(x, query_pos, ...)
//                 new_i = sigmoid( bbox_embed[i](x) + inverse_sigmoid(ref_i) ),  ref_{i+1} = detach(new_i)
//   outputs of layer i:  logits_i = class_embed[i]( norm(x_i) )
//                        boxes_i  = sigmoid( bbox_embed[i]( norm(x_i) ) + inverse_sigmoid(prev_i) )
//   with prev_0 = ref_0 and prev_i = new_{i-1} NOT detached (look-forward-twice: the box of layer i
//   also trains the refinement of layer i - 1; with look_forward_twice off, prev_i = ref_i).
// The refinement reads the un-normed x, the outputs the normed one (as DINO). No query_scale: DINO's
// deformable decoder has none. The sine embedding uses F = C / 2 frequencies per coordinate, so that
// 4 F = 2 C (detrex hard-codes 128, i.e. C = 256).
//
// Heads: class_embed.<j> (Linear C -> num_classes) and bbox_embed.<j> (DetrMLP C -> C -> C -> 4), j in
// [0, num_layers]; j = num_layers is the encoder's (two-stage proposals). With dec_pred_*_embed_share
// (IDEA DINO's default) entries 0 .. num_layers - 1 are ONE module (listed under every index in the state
// dict, as PyTorch does); with two_stage_*_embed_share the encoder's entry is that module too. Head init as
// DINO: class bias -log((1 - 0.01) / 0.01) (prior 0.01), last box Linear weight and bias 0.
//
// State dict (detrex's names): layers.<i>.attentions.0.attn.{in_proj_weight, in_proj_bias, out_proj.*},
// layers.<i>.attentions.1.* (MSDeformAttn), layers.<i>.ffns.0.*, layers.<i>.norms.{0,1,2}.*,
// ref_point_head.layers.{0,1}.*, norm.*, class_embed.<j>.*, bbox_embed.<j>.layers.{0,1,2}.*.
#pragma once
#include <memory>

#include "engine/nn/containers.h"
#include "engine/nn/linear.h"
#include "engine/nn/norm.h"
#include "engine/rng.h"
#include "models/det/detr_ffn.h"
#include "models/det/detr_mlp.h"
#include "models/det/detr_multihead_attention.h"
#include "models/det/ms_deform_attn_module.h"

namespace rv::models::det {

struct DinoDecoderOptions {
  int64_t embed_dim = 256;         // C
  int64_t num_heads = 8;           // NH (self- and cross-attention)
  int64_t feedforward_dim = 2048;
  double dropout = 0.0;            // attention and FFN dropouts (DINO's configs: 0)
  int64_t num_layers = 6;
  int64_t num_levels = 4;          // L
  int64_t num_points = 4;          // P
  int64_t num_classes = 80;
  bool look_forward_twice = true;
  bool dec_pred_class_embed_share = true;   // one class head for all decoder layers
  bool dec_pred_bbox_embed_share = true;    // one box head for all decoder layers
  bool two_stage_class_embed_share = false; // the encoder's class head is the decoder's
  bool two_stage_bbox_embed_share = false;  // the encoder's box head is the decoder's
};

class DinoDecoderLayer : public nn::Module {
 public:
  std::shared_ptr<nn::ModuleList> attentions;  // [DetrMultiheadAttention, MultiScaleDeformableAttention]
  std::shared_ptr<nn::ModuleList> ffns;        // [DetrFFN]
  std::shared_ptr<nn::ModuleList> norms;       // 3 LayerNorm

  DinoDecoderLayer(const DinoDecoderOptions& options, Generator& gen);

  // x, query_pos (B, Q, C); memory (B, S, C); reference_points (B, Q, L, 4) boxes (or (B, Q, L, 2));
  // spatial_shapes (L, 2) i64; level_start_index (L) i64; memory_mask (B, S) bool, true = padding, or
  // undefined; attn_mask (Q, Q) bool, true = blocked, or undefined. -> (B, Q, C)
  Tensor forward(const Tensor& x, const Tensor& query_pos, const Tensor& memory, const Tensor& reference_points,
                 const Tensor& spatial_shapes, const Tensor& level_start_index, const Tensor& memory_mask,
                 const Tensor& attn_mask);

  DetrMultiheadAttention& self_attn() const { return *attentions->get<DetrMultiheadAttention>(0); }
  MultiScaleDeformableAttention& cross_attn() const { return *attentions->get<MultiScaleDeformableAttention>(1); }
  std::string type_name() const override { return "BaseTransformerLayer"; }
};

struct DinoDecoderOutput {
  Tensor logits;  // (num_layers, B, Q, num_classes)
  Tensor boxes;   // (num_layers, B, Q, 4) (cx, cy, w, h) in (0, 1)
};

class DinoTransformerDecoder : public nn::Module {
 public:
  std::shared_ptr<nn::ModuleList> layers;          // num_layers DinoDecoderLayer
  std::shared_ptr<DetrMLP> ref_point_head;         // 2C -> C -> C
  std::shared_ptr<nn::LayerNorm> norm;             // on every layer's output before the heads
  std::shared_ptr<nn::ModuleList> class_embed;     // num_layers + 1 nn::Linear (last: the encoder's)
  std::shared_ptr<nn::ModuleList> bbox_embed;      // num_layers + 1 DetrMLP

  DinoTransformerDecoder(const DinoDecoderOptions& options, Generator& gen);

  // tgt (B, Q, C) the content queries; reference_boxes (B, Q, 4) in [0, 1] (its gradient is not used:
  // DINO passes detached boxes); memory (B, S, C); memory_mask (B, S) bool or undefined; valid_ratios
  // (B, L, 2); attn_mask (Q, Q) bool or undefined.
  DinoDecoderOutput forward(const Tensor& tgt, const Tensor& reference_boxes, const Tensor& memory,
                            const Tensor& memory_mask, const Tensor& spatial_shapes, const Tensor& level_start_index,
                            const Tensor& valid_ratios, const Tensor& attn_mask = Tensor());

  nn::Linear& class_head(size_t j) const { return *class_embed->get<nn::Linear>(j); }
  DetrMLP& bbox_head(size_t j) const { return *bbox_embed->get<DetrMLP>(j); }
  DinoDecoderLayer& layer(size_t i) const { return *layers->get<DinoDecoderLayer>(i); }
  const DinoDecoderOptions& options() const { return opt_; }

 private:
  DinoDecoderOptions opt_;
};

}  // namespace rv::models::det
