// ape.h: learned absolute position embeddings (APE) of a ViT, and their resampling to another grid.
//
// The table `pos_embed` is (1, P + Gh*Gw, C): P prefix rows (P = 1 when the CLS token has its own
// entry, as in the original ViT; P = 0 in DeiT-III / RoPE-ViT, where APE covers patch tokens
// only), then one row per patch of the Gh x Gw grid the model was built for, row-major.
//
// At another input size the patch rows are resized as an image:
//   (1, Gh*Gw, C) -> (1, C, Gh, Gw) -> bicubic (A = -0.75, align_corners false) -> (1, C, Gh', Gw')
//   -> (1, Gh'*Gw', C), prefix rows put back in front unchanged.
// antialias = true is timm's resample_abs_pos_embed (it only matters when a side shrinks);
// antialias = false is the official RoPE-ViT code (plain bicubic, spec section 4).
// The checkpoint converter calls the same function, so a converted table equals what the model
// computes on the fly.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::models {

struct Grid {
  int64_t h = 0, w = 0;  // Gh, Gw: patches per column and per row
  int64_t tokens() const { return h * w; }
  bool operator==(const Grid&) const = default;
};

// pos_embed (1, P + old.h*old.w, C) -> (1, P + new.h*new.w, C), differentiable in pos_embed.
// Returns pos_embed itself when the grids are equal. bf16/f16 tables are resized in f32 and
// rounded back (as timm). Throws naming the argument when the row count does not match
// num_prefix_tokens + old grid.
Tensor resample_abs_pos_embed(const Tensor& pos_embed, Grid old_grid, Grid new_grid, int64_t num_prefix_tokens,
                              bool antialias);

}  // namespace rv::models
