// swin_block.h: SwinBlock, one Swin Transformer block (W-MSA or SW-MSA, then an MLP; no LayerScale).
//
//   x (B, H, W, C)
//     h = norm1(x) -> roll(-sh, -sw) -> pad to (Hp, Wp) -> windows (B*nW, N, C)
//       -> attn (RPB or RoPE, + the -100 mask when shifted) -> reverse -> crop (H, W) -> roll(+sh, +sw)
//     x = x + drop_path1(h)
//     x = x + drop_path2(mlp(norm2(x)))          on (B, H*W, C)
//
// A block is built for one stage resolution (H, W), as timm's is: its window, shift and mask
// follow from it (models/swin_window.h). Children carry timm's names: norm1, attn, drop_path1,
// norm2, mlp, drop_path2; the mask is the non-persistent buffer `attn_mask` (nW, N, N).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "models/model_config.h"
#include "models/swin_attention.h"
#include "models/swin_window.h"

namespace rv::models {

class SwinBlock : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::LayerNorm> norm1;
  std::shared_ptr<SwinWindowAttention> attn;
  std::shared_ptr<nn::DropPath> drop_path1;
  std::shared_ptr<nn::LayerNorm> norm2;
  std::shared_ptr<nn::Mlp> mlp;
  std::shared_ptr<nn::DropPath> drop_path2;
  Tensor attn_mask;  // (nW, N, N) over the padded map; undefined for W-MSA

  // dim = C of the stage, (res_h, res_w) its resolution, ws the target window, shifted for the
  // odd blocks of a stage; drop_path is this block's stochastic depth rate.
  SwinBlock(int64_t dim, int64_t num_heads, int64_t res_h, int64_t res_w, int64_t ws, bool shifted, double drop_path,
            const ModelConfig& cfg, Generator& gen);

  Tensor forward(const Tensor& x) override;  // (B, H, W, C) -> (B, H, W, C)

  const SwinWindow& window() const { return window_; }
  int64_t padded_h() const { return Hp_; }
  int64_t padded_w() const { return Wp_; }

 private:
  Tensor window_attention(const Tensor& x);  // the first branch, before drop_path1
  int64_t H_, W_, Hp_, Wp_;
  SwinWindow window_;
};

}  // namespace rv::models
