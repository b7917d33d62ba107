// dino_query_selection.h: DINO's two-stage "mixed" query selection (detrex's DINOTransformer.forward
// between the encoder and the decoder, with gen_encoder_output_proposals).
//
//   memory (B, S, C) --zero where not kept--> enc_output (Linear) --> enc_output_norm (LayerNorm)
//                                                                     = output_memory (B, S, C)
//   encoder heads (the decoder's class_embed / bbox_embed entry num_layers):
//     class logits (B, S, K_cls),  box logits = bbox_head(output_memory) + proposals  (B, S, 4)
//   top-k: the num_queries tokens of largest max-over-classes logit, per image, in decreasing order
//     (ties: the lower token index first; PyTorch's topk leaves their order unspecified)
//   reference boxes = sigmoid(selected box logits), DETACHED: where the decoder starts
//   "mixed": the positional side of the queries comes from these boxes (the decoder embeds them),
//     the content side is the learnt tgt_embed (num_queries, C), NOT the selected memory (DINO's
//     choice over Deformable DETR's two-stage, where both come from the memory)
// The encoder loss reads enc_logits = class_head(selected output_memory) and enc_boxes =
// sigmoid(selected box logits) undetached, so the encoder and its heads learn from it.
//
// Proposals (dino_geometry.h) are +inf on padding and near the border, so their box logits are inf
// and their memory zero; DINO does not exclude them from the top-k, and neither does this.
#pragma once
#include <cstdint>

#include "engine/nn/linear.h"
#include "engine/nn/norm.h"
#include "engine/tensor.h"
#include "models/det/detr_mlp.h"
#include "models/det/dino_geometry.h"

namespace rv::models::det {

struct QuerySelection {
  Tensor topk;             // (B, K) i64, token indices into S
  Tensor reference_boxes;  // (B, K, 4) in (0, 1], detached
  Tensor content;          // (B, K, C): tgt_embed repeated over the batch
  Tensor enc_logits;       // (B, K, num_classes)
  Tensor enc_boxes;        // (B, K, 4) sigmoid, differentiable
};

// memory (B, S, C); mask_flatten (B, S) bool (true = padding); tgt_embed (K, C) with K = num_queries
// <= S. enc_output, enc_output_norm, class_head and bbox_head are the transformer's modules.
QuerySelection select_queries(const Tensor& memory, const Tensor& mask_flatten, const LevelShapes& shapes,
                              nn::Linear& enc_output, nn::LayerNorm& enc_output_norm, nn::Linear& class_head,
                              DetrMLP& bbox_head, const Tensor& tgt_embed);

// The top-k of each row of scores (B, S) -> (B, K) i64 indices in decreasing score order, ties by the
// lower index, NaN above everything (as torch.topk). Not differentiable.
Tensor topk_indices(const Tensor& scores, int64_t k);

}  // namespace rv::models::det
