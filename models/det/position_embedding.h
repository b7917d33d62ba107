// position_embedding.h: the sine position embeddings of DETR-style detectors, as detrex computes
// them for DINO (detrex/layers/position_embedding.py).
//
// sine_position_embedding: a feature level's pixel positions -> (B, 2F, H, W), from its padding
//   mask (B, H, W) (true = padding). Row and column numbers count the valid pixels (a cumulative
//   sum of the mask's complement), normalised when asked: (n + offset) / (last + eps) * scale
//   (DINO: offset -0.5, scale 2 pi, so a pixel centre maps into (0, 2 pi)). With
//   dim_t[i] = T^(2 floor(i / 2) / F), each coordinate becomes F values
//   [sin(p / dim_t[0]), cos(p / dim_t[1]), sin(p / dim_t[2]), ...] (sin and cos interleaved, each
//   pair sharing its frequency); the y values come first, then the x values.
// sine_embed_of_positions: the same map for arbitrary positions in [0, 1] (the decoder's
//   reference points): pos (N, B, n) -> (N, B, n F), each coordinate p times 2 pi first;
//   exchange_xy swaps the first two coordinates' blocks (x, y -> y, x), as DINO's decoder does.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::models::det {

struct SinePositionOptions {
  int64_t num_pos_feats = 128;  // F: half the output channels
  double temperature = 10000;
  bool normalize = true;
  double scale = 6.283185307179586;  // 2 pi
  double eps = 1e-6;
  double offset = -0.5;
};

// mask (B, H, W) bool, true where padded -> (B, 2F, H, W) f32 on the mask's device. Not
// differentiable (it depends on the mask only).
Tensor sine_position_embedding(const Tensor& mask, const SinePositionOptions& opt = {});

// pos (N, B, n) float -> (N, B, n * F) on pos's device. Not differentiable: DINO embeds detached
// reference points, and a pos that requires grad is refused (with grad mode on).
Tensor sine_embed_of_positions(const Tensor& pos, int64_t num_pos_feats = 128, double temperature = 10000,
                               bool exchange_xy = true);

}  // namespace rv::models::det
