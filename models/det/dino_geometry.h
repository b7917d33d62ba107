// dino_geometry.h: the fixed geometry of DINO's transformer, computed from the padding masks and the
// level sizes (detrex's DINOTransformer helpers), and inverse_sigmoid.
//
// A batch pads its images to one size; a level's padding mask (B, H, W) is true on the padding, and
// the valid part is the top-left valid_H x valid_W rectangle. DINO normalises positions by that valid
// part, not by the padded map:
//   valid_ratios          (B, L, 2) = (valid_W / W, valid_H / H) per level (from row 0 and column 0)
//   encoder_reference_points  (B, S, L, 2): the centre of every pixel of every level, (x + 0.5) /
//                         (ratio_w W), (y + 0.5) / (ratio_h H), then multiplied by each level's ratios
//                         (so that the encoder samples level l at the same image point); S = sum H_l W_l
//   encoder_proposals     one box per pixel for two-stage query selection: centre (x + 0.5) / valid_W,
//                         (y + 0.5) / valid_H, size 0.05 * 2^l on level l, as logits (inverse sigmoid,
//                         log(p / (1 - p))); +inf where the pixel is padding or any coordinate lies
//                         outside (0.01, 0.99), and `keep` false there (the memory is zeroed there)
// All in f32 as detrex computes them (the same roundings), then converted to the requested dtype; none
// is differentiable (they depend on masks and sizes only).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rv::models::det {

using LevelShapes = std::vector<std::pair<int64_t, int64_t>>;  // (H, W) per level

// masks: one bool (B, H_l, W_l) per level -> (B, L, 2) in `dtype`.
Tensor valid_ratios(const std::vector<Tensor>& masks, DType dtype = DType::f32);

// valid_ratios (B, L, 2) -> (B, S, L, 2) in valid_ratios's dtype.
Tensor encoder_reference_points(const LevelShapes& shapes, const Tensor& valid_ratios);

struct EncoderProposals {
  Tensor proposals;  // (B, S, 4) (cx, cy, w, h) logits, +inf where not kept
  Tensor keep;       // (B, S) bool: not padding and every coordinate inside (0.01, 0.99)
};
// mask_flatten (B, S) bool, the levels' masks flattened and concatenated.
EncoderProposals encoder_proposals(const Tensor& mask_flatten, const LevelShapes& shapes, DType dtype = DType::f32);

// log(x / (1 - x)) with x clamped to [0, 1] and both x and 1 - x to at least eps (detrex's
// inverse_sigmoid, eps 1e-3): finite for boxes at 0 or 1. Differentiable (zero gradient where clamped).
Tensor inverse_sigmoid(const Tensor& x, double eps = 1e-3);

}  // namespace rv::models::det
