// interpolate.h: F.interpolate for images (B, C, H, W) and sequences (B, C, L), forward and
// backward, matching PyTorch's numerics; on the CPU, and on a device through the backend's
// resample2d (the same tap tables, cuda/kernels/resample.cu; f32 and f64).
//
//   interpolate(x, {.size = {9, 9}, .mode = "bicubic"})                   ViT position embeddings
//   interpolate(x, {.size = {9, 9}, .mode = "bicubic", .antialias = true}) timm's resample
//   interpolate(x, {.scale_factor = {4}, .mode = "bilinear", .align_corners = false})
//
// Modes: "nearest" (PyTorch's legacy rule: src = floor(dst * in/out)), "linear" (3-D input),
// "bilinear" and "bicubic" (4-D input; cubic convolution with A = -0.75, the 4 taps clamped to
// the border), "area" (4-D; adaptive average pooling).
// Source coordinates: align_corners=false: src = (dst + 0.5) * scale - 0.5 with scale = in/out,
// or 1/scale_factor when scale_factor is given and recompute_scale_factor is false (clamped at
// 0 for linear); align_corners=true: src = dst * (in-1)/(out-1).
// antialias (bilinear/bicubic): PyTorch's separable filters (triangle, or Keys cubic with
// A = -0.5 as PIL), their support widened by the downscale factor, weights normalised per
// output pixel; width is resampled first, then height, and a dim whose size does not change is
// left alone.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rv {

struct InterpolateOptions {
  std::vector<int64_t> size = {};     // output spatial size: one value per spatial dim, or one for all
  std::vector<double> scale_factor = {};  // or a factor per spatial dim (one for all); exactly one is given
  std::string mode = "nearest";
  std::optional<bool> align_corners = std::nullopt;  // only for linear / bilinear / bicubic; unset means false
  bool antialias = false;
  bool recompute_scale_factor = false;  // use floor(in * scale_factor) as a size, and forget the factor
};

Tensor interpolate(const Tensor& x, const InterpolateOptions& opt);

}  // namespace rv
