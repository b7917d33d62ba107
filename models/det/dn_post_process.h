// dn_post_process.h: DINO's dn_post_process: the decoder runs the denoising queries and the
// matching queries together (denoising first, dn_meta.h); the losses treat them apart, so each
// layer's predictions are cut into the first pad_size queries (the denoising part, supervised by
// construction) and the rest (the matching part, supervised through the Hungarian matching).
//
//   per layer: logits (B, pad_size + Q, K) -> dn (B, pad_size, K) + matching (B, Q, K)
//              boxes  (B, pad_size + Q, 4) -> dn (B, pad_size, 4) + matching (B, Q, 4)
//
// The parts are views (narrow), so gradients flow back into the full outputs. Without denoising
// queries (pad_size 0) the dn list is empty and the matching part is the whole output, as DINO
// then skips the split.
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "models/det/dn_meta.h"

namespace rv::models::det {

// One prediction head's output for a set of queries: logits (B, Q, K), boxes (B, Q, 4) cxcywh
// in [0, 1] (after the sigmoid).
struct DetPrediction {
  Tensor logits;
  Tensor boxes;
};

struct DnSplit {
  std::vector<DetPrediction> dn;        // one per decoder layer; empty without denoising queries
  std::vector<DetPrediction> matching;  // one per decoder layer, the last is the final prediction
};

// layers: one DetPrediction per decoder layer (first to last).
DnSplit dn_post_process(const std::vector<DetPrediction>& layers, const DnMeta& meta);

// The same on stacked outputs: logits (L, B, pad_size + Q, K), boxes (L, B, pad_size + Q, 4).
DnSplit dn_post_process(const Tensor& logits, const Tensor& boxes, const DnMeta& meta);

}  // namespace rv::models::det
