// ms_deform_attn_module.h: MultiScaleDeformableAttention, mmcv's module of that name (the attention
// of Deformable DETR's and DINO's encoder and of their decoders' cross-attention), batch_first=True.
//
//   query (B, Q, C) --sampling_offsets-->  offsets (B, Q, NH, L, P, 2)     -> sampling locations --+
//                   --attention_weights--> softmax over L*P (B, Q, NH, L, P)                        +--> ms_deform_attn
//   value (B, S, C) --value_proj-->        (B, S, NH, C/NH)                                       --+    (B, Q, C)
//   --output_proj--> dropout --> + identity
//
// where the sampling locations are the reference points moved by the offsets:
//   reference points (B, Q, L, 2), normalised (x, y):   loc = ref + offset / (W_l, H_l)   (offsets in pixels)
//   reference boxes  (B, Q, L, 4), (cx, cy, w, h):      loc = (cx, cy) + offset / P * (w, h) * 0.5
// so with the initial offsets (below) the P points of a head spread along one direction, out to the
// half-size of the box. The output is dropout(output_proj(out)) + identity (identity defaults to the
// query before query_pos is added), as mmcv's forward.
//
// State dict: sampling_offsets.{weight,bias}, attention_weights.*, value_proj.*, output_proj.*:
// mmcv's names and order, so a checkpoint's `...attentions.0.` entries load by name.
// Initialisation as mmcv's init_weights(): sampling_offsets weight 0 and bias the grid of directions
// (head h points at angle 2 pi h / NH, scaled so the larger coordinate is 1; point p at (p + 1) times
// that, on every level), attention_weights weight and bias 0 (uniform weights after the softmax),
// value_proj and output_proj xavier_uniform with bias 0.
#pragma once
#include <memory>
#include <string>

#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "engine/rng.h"

namespace rv::models::det {

struct MSDeformAttnOptions {
  int64_t embed_dims = 256;       // C
  int64_t num_heads = 8;          // NH, must divide the value projection's width
  int64_t num_levels = 4;         // L
  int64_t num_points = 4;         // P
  double dropout = 0.1;           // on the projected output, before the residual
  double value_proj_ratio = 1.0;  // value_proj: C -> int(C * ratio)
};

// The optional inputs of forward, as mmcv's keyword arguments. Undefined tensors are absent.
struct MSDeformAttnExtras {
  Tensor identity;          // (B, Q, C) added to the output; default: query (before query_pos)
  Tensor query_pos;         // (B, Q, C) added to the query before the offsets and weights are predicted
  Tensor key_padding_mask;  // (B, S) bool (or uint8): true where the value token is padding (zeroed)
};

class MultiScaleDeformableAttention : public nn::Module {
 public:
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> sampling_offsets;   // C -> NH*L*P*2
  std::shared_ptr<nn::Linear> attention_weights;  // C -> NH*L*P
  std::shared_ptr<nn::Linear> value_proj;         // C -> Cv = int(C * value_proj_ratio)
  std::shared_ptr<nn::Linear> output_proj;        // Cv -> C

  MultiScaleDeformableAttention(const MSDeformAttnOptions& options, Generator& gen);

  // mmcv's init_weights() (the constructor calls it): see the file comment.
  void init_weights(Generator& gen);

  // query (B, Q, C); value (B, S, C) or undefined (then the query is the value: S = Q);
  // reference_points (B, Q, L, 2) or (B, Q, L, 4); spatial_shapes (L, 2) int64 (H, W) and
  // level_start_index (L) int64 as ms_deform_attn takes them.  -> (B, Q, C)
  Tensor forward(const Tensor& query, const Tensor& value, const Tensor& reference_points,
                 const Tensor& spatial_shapes, const Tensor& level_start_index,
                 const MSDeformAttnExtras& extras = {});

  const MSDeformAttnOptions& options() const { return opt_; }
  std::string type_name() const override { return "MultiScaleDeformableAttention"; }

 private:
  MSDeformAttnOptions opt_;
  int64_t value_dims_ = 0;  // Cv
};

}  // namespace rv::models::det
