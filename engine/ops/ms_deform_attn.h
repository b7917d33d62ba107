// ms_deform_attn.h: multi-scale deformable attention (Deformable DETR, DINO), the core op of
// mmcv's MultiScaleDeformableAttention.
//
// Each query q and head h reads a few points of a multi-level feature pyramid: at level l it samples
// the value map (H_l, W_l) of head h bilinearly at P learned locations and sums the samples with
// learned weights. With S = sum_l H_l W_l flattened value tokens:
//
//   out[b, q, h*HD + c] = sum_{l, p} attn[b, q, h, l, p] * bilinear(value[b, level l, h, c], loc[b, q, h, l, p])
//
// The semantics are exactly those of the reference PyTorch path (mmcv's
// multi_scale_deformable_attn_pytorch): grid_sample(mode='bilinear', padding_mode='zeros',
// align_corners=False) on each level, i.e. a location (x, y) in [0, 1] lands on the pixel coordinate
// (x * W_l - 0.5, y * H_l - 0.5) (pixel centres at integers), and each of the four taps that falls
// outside the map reads 0. Locations outside [0, 1] are allowed (they fade out to 0 within half a pixel
// of the border). Non-finite locations sample nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rv {

// value:              (B, S, NH, HD) float, S = sum_l H_l * W_l, levels stored one after the other
// spatial_shapes:     (L, 2) int64, row l = (H_l, W_l), each >= 0
// level_start_index:  (L) int64, the start of level l in S: must be the exclusive prefix sum of H_l W_l
//                     (the reference PyTorch path splits value by the sizes, so any other start
//                     would disagree with it; a mismatch is an error)
// sampling_locations: (B, Q, NH, L, P, 2) float, (x, y) normalised to [0, 1] per level
// attention_weights:  (B, Q, NH, L, P) float (softmax-ed over L*P by the caller)
// ->                  (B, Q, NH*HD) contiguous, in the promoted dtype of the three float inputs.
//
// Differentiable w.r.t. value, sampling_locations and attention_weights. f32 and f64 compute
// (bf16 / f16 are widened to f32 and rounded back). On the CPU, deterministic and independent of the
// thread count: the forward runs in parallel over (B, Q), the backward over (B, NH) with each task
// owning its slice of the value gradient. On cuda, value, sampling_locations and attention_weights
// must share the device (the int64 shapes may be on the host or on that device).
// bilinear is not differentiable where a location crosses a pixel centre (x * W_l - 0.5 an integer);
// there the gradient is the one-sided one PyTorch's grid_sample gives.
Tensor ms_deform_attn(const Tensor& value, const Tensor& spatial_shapes, const Tensor& level_start_index,
                      const Tensor& sampling_locations, const Tensor& attention_weights);

// The (L, 2) int64 spatial_shapes and (L) level_start_index for levels given as {H, W} pairs: a
// helper for callers that build the pyramid (and for tests). Host tensors.
Tensor ms_deform_attn_spatial_shapes(const std::vector<std::pair<int64_t, int64_t>>& levels);
Tensor ms_deform_attn_level_start(const std::vector<std::pair<int64_t, int64_t>>& levels);

}  // namespace rv
