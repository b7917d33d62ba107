// ape.cpp: resample_abs_pos_embed, the bicubic resize of an APE table to another patch grid.
#include "models/ape.h"

#include <stdexcept>
#include <string>

#include "engine/ops/interpolate.h"
#include "engine/ops/shape.h"

namespace rv::models {

Tensor resample_abs_pos_embed(const Tensor& pos_embed, Grid old_grid, Grid new_grid, int64_t num_prefix_tokens,
                              bool antialias) {
  const std::string op = "resample_abs_pos_embed";
  if (!pos_embed.defined() || pos_embed.dim() != 3 || pos_embed.size(0) != 1)
    throw std::invalid_argument(op + ": expected pos_embed of shape (1, P + Gh*Gw, C), got " +
                                (pos_embed.defined() ? shape_str(pos_embed.shape()) : std::string("undefined")));
  if (old_grid.h <= 0 || old_grid.w <= 0 || new_grid.h <= 0 || new_grid.w <= 0 || num_prefix_tokens < 0)
    throw std::invalid_argument(op + ": expected positive grids and num_prefix_tokens >= 0, got old " +
                                std::to_string(old_grid.h) + "x" + std::to_string(old_grid.w) + ", new " +
                                std::to_string(new_grid.h) + "x" + std::to_string(new_grid.w) + ", prefix " +
                                std::to_string(num_prefix_tokens));
  if (pos_embed.size(1) != num_prefix_tokens + old_grid.tokens())
    throw std::invalid_argument(op + ": pos_embed has " + std::to_string(pos_embed.size(1)) +
                                " rows, expected num_prefix_tokens + old grid = " + std::to_string(num_prefix_tokens) +
                                " + " + std::to_string(old_grid.h) + "*" + std::to_string(old_grid.w));
  if (old_grid == new_grid) return pos_embed;

  const int64_t C = pos_embed.size(2);
  const DType dt = pos_embed.dtype();
  const bool narrow_float = dt == DType::bf16 || dt == DType::f16;
  Tensor patches = pos_embed.narrow(1, num_prefix_tokens, old_grid.tokens());
  if (narrow_float) patches = patches.to(DType::f32);  // resize in f32, round once at the end
  // (1, Gh*Gw, C) -> (1, C, Gh, Gw): the table as a C-channel image.
  Tensor img = patches.reshape({1, old_grid.h, old_grid.w, C}).permute({0, 3, 1, 2});
  Tensor resized = interpolate(img.contiguous(), {.size = {new_grid.h, new_grid.w},
                                                  .mode = "bicubic",
                                                  .align_corners = false,
                                                  .antialias = antialias});
  // (1, C, Gh', Gw') -> (1, Gh'*Gw', C), row-major over the new grid.
  Tensor out = resized.permute({0, 2, 3, 1}).reshape({1, new_grid.tokens(), C});
  if (narrow_float) out = out.to(dt);
  if (num_prefix_tokens == 0) return out;
  return cat({pos_embed.narrow(1, 0, num_prefix_tokens), out}, 1);
}

}  // namespace rv::models
