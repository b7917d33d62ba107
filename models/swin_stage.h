// swin_stage.h: a Swin stage (timm's layout): an optional PatchMerging that halves the resolution
// and doubles the channels, then the stage's blocks, alternating W-MSA and SW-MSA.
//
//   PatchMerging: x (B, H, W, C) -> pad odd H, W with zeros -> the 2x2 neighbours
//     x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]
//     -> cat (B, H/2, W/2, 4C) -> norm (LN 4C) -> reduction (Linear 4C -> 2C, no bias)
//   SwinStage: x (B, H_in, W_in, C_in) -> [downsample] -> blocks -> (B, H_s, W_s, C_s)
//
// timm places the merge at the START of stages 1..3 (`layers.{s}.downsample`), where MS and NV
// place it at the END of stages 0..2 (`layers.{s-1}.downsample`); the maths is the same, only the
// checkpoint names move (tools/swin_rope_reference.py, nv_to_timm_key, does the renaming).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "models/model_config.h"
#include "models/swin_block.h"

namespace rv::models {

class PatchMerging : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::LayerNorm> norm;     // (4C)
  std::shared_ptr<nn::Linear> reduction;   // (2C, 4C), no bias

  PatchMerging(int64_t dim, double norm_eps, Generator& gen);
  Tensor forward(const Tensor& x) override;  // (B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)
};

class SwinStage : public nn::UnaryModule {
 public:
  std::shared_ptr<PatchMerging> downsample;  // null in stage 0 (timm's Identity: no keys)
  std::shared_ptr<nn::ModuleList> blocks;

  // in_dim -> out_dim (out_dim = 2 in_dim with downsample), (res_h, res_w) the resolution of the
  // blocks (after the merge), ws the target window, drop_paths one rate per block.
  SwinStage(int64_t in_dim, int64_t out_dim, bool downsample, int64_t res_h, int64_t res_w, int64_t depth,
            int64_t num_heads, int64_t ws, const std::vector<double>& drop_paths, const ModelConfig& cfg,
            Generator& gen);
  Tensor forward(const Tensor& x) override;

  int64_t res_h() const { return res_h_; }
  int64_t res_w() const { return res_w_; }

 private:
  int64_t res_h_, res_w_;
};

}  // namespace rv::models
