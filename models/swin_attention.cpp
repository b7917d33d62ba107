// swin_attention.cpp: WindowAttention: RPB or window-local RoPE on top of nn::Attention.
#include "models/swin_attention.h"

#include <stdexcept>

#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/rope.h"
#include "models/swin_rel_pos_bias.h"

namespace rv::models {

SwinWindowAttention::SwinWindowAttention(int64_t dim, int64_t num_heads, const SwinWindow& window,
                                         const ModelConfig& cfg, Generator& gen)
    : nn::Attention(dim, num_heads, gen, cfg.qkv_bias, cfg.attn_drop_rate, cfg.proj_drop_rate), window_(window) {
  const int64_t NH = num_heads, HD = head_dim();
  if (cfg.uses_rpb()) {
    Tensor table = empty({(2 * window.wh - 1) * (2 * window.ww - 1), NH});
    nn::init::trunc_normal_(table, gen, 0.02);
    relative_position_bias_table = register_parameter("relative_position_bias_table", table);
    relative_position_index =
        register_buffer("relative_position_index", models::relative_position_index(window.wh, window.ww), /*persistent=*/false);
  } else if (cfg.uses_rope()) {
    if (HD % 4 != 0)
      throw std::invalid_argument("SwinWindowAttention: RoPE needs a head dim divisible by 4, got " +
                                  std::to_string(HD) + " (dim " + std::to_string(dim) + ", " + std::to_string(NH) +
                                  " heads)");
    if (cfg.uses_rope_mixed()) {
      // Learned: one random direction phi per head (theta 10), trained without weight decay.
      rope_freqs = register_parameter("rope_freqs", rope_mixed_freqs(NH, HD, gen, cfg.rope_mixed_theta));
    } else {
      // Fixed: the mixed construction with phi = 0 and theta 50, saved in the state dict (NV).
      rope_freqs = register_buffer("rope_freqs", rope_swin_axial_freqs(NH, HD, cfg.rope_theta), /*persistent=*/true);
    }
    // Window-local coordinates: t_x = i mod ww (column), t_y = i / ww (row).
    rope_pos = register_buffer("rope_pos", rope_grid_positions(window.wh, window.ww), /*persistent=*/false);
  } else {
    throw std::invalid_argument("SwinWindowAttention: pos_embed '" + cfg.pos_embed +
                                "' is not one of rpb, rope_axial, rope_mixed");
  }
}

Tensor SwinWindowAttention::rel_pos_bias() const {
  return relative_position_bias(relative_position_bias_table, relative_position_index);
}

Tensor SwinWindowAttention::rope_window_angles() const { return rope_angles(rope_freqs, rope_pos); }

Tensor SwinWindowAttention::forward_windows(const Tensor& x, const Tensor& mask) {
  // The additive bias: RPB (1, NH, N, N) and/or the mask (nW, 1, N, N) -> (nW or 1, NH or 1, N, N).
  Tensor bias;
  if (relative_position_bias_table.defined()) bias = rel_pos_bias().unsqueeze(0);
  if (mask.defined()) {
    Tensor m = mask.to(x.dtype()).unsqueeze(1);
    bias = bias.defined() ? add(bias, m) : m;
  }
  if (!rope_freqs.defined()) return nn::Attention::forward(x, QKTransform(), bias);
  // One angle table per call, shared by q and k (and by every window: the coordinates are local).
  Tensor angles = rope_window_angles();
  auto rotate = [&angles](const Tensor& q, const Tensor& k) {
    return std::pair<Tensor, Tensor>(rope_apply(q, angles), rope_apply(k, angles));
  };
  return nn::Attention::forward(x, rotate, bias);
}

}  // namespace rv::models
