// swin_attention.h: WindowAttention, Swin's multi-head self-attention inside windows, with either
// the relative position bias (RPB, the original Swin) or RoPE in window-local coordinates
// (RoPE-Axial / RoPE-Mixed Swin, spec/rope-vit.md section 5).
//
//   x (B*nW, N, C), N = wh*ww tokens of a window
//     -> qkv -> q, k, v (B*nW, NH, N, HD)
//     -> RoPE only: rotate q and k by angles (NH, N, HD/2) = rope_angles(rope_freqs, window coords)
//     -> softmax(q kᵀ HD^-0.5 + [RPB (NH, N, N)] + [shift mask (nW, 1, N, N)]) v -> proj
//
// It is an nn::Attention (children qkv, attn_drop, proj, proj_drop) plus its position tensors, so
// the state dict reads as timm's `attn.relative_position_bias_table, attn.qkv.weight, ...`, or for
// RoPE `attn.rope_freqs, attn.qkv.weight, ...` (own tensors come before the children's).
//   relative_position_bias_table ((2wh-1)(2ww-1), NH)  parameter, RPB only, trunc_normal(.02)
//   relative_position_index      (N, N) int64          non-persistent buffer (as timm), RPB only
//   rope_freqs                   (2, NH, HD/2)         RoPE-Mixed: parameter (theta 10, random phi);
//                                                      RoPE-Axial: persistent buffer (theta 50, phi 0)
//   rope_pos                     (N, 2) f32            non-persistent buffer: (t_x, t_y) = (i mod ww, i / ww)
//
// The reference scales q BEFORE rotating it; nn::Attention scales inside the product, after the
// rotation. A rotation is linear, so the two are equal up to fp32 rounding (checked against the
// PyTorch reference in tests/fixtures/test_swin_model.cpp).
//
// The bias is passed to nn::Attention with a window-group dim: RPB + mask is (nW, NH, N, N) and
// x holds the nW windows of each image consecutively, so no copy per image is made.
#pragma once
#include <cstdint>
#include <string>

#include "engine/nn/attention.h"
#include "models/model_config.h"
#include "models/swin_window.h"

namespace rv::models {

class SwinWindowAttention : public nn::Attention {
 public:
  Tensor relative_position_bias_table;  // RPB only (else undefined)
  Tensor relative_position_index;       // RPB only
  Tensor rope_freqs;                    // RoPE only
  Tensor rope_pos;                      // RoPE only

  // dim = C of the stage, window = this block's window; cfg supplies pos_embed, qkv_bias, the
  // dropout rates and the RoPE thetas. Draws qkv, proj (nn::Linear's init) and the RPB table or
  // the mixed phis from `gen`.
  SwinWindowAttention(int64_t dim, int64_t num_heads, const SwinWindow& window, const ModelConfig& cfg,
                      Generator& gen);

  // x (B*nW, N, C) windows, mask (nW, N, N) or undefined -> (B*nW, N, C).
  Tensor forward_windows(const Tensor& x, const Tensor& mask);
  Tensor forward(const Tensor& x) override { return forward_windows(x, Tensor()); }

  // The bias added to the scores, without the mask: (NH, N, N) from the RPB table.
  Tensor rel_pos_bias() const;
  // RoPE angles (NH, N, HD/2) of the window's tokens.
  Tensor rope_window_angles() const;

  const SwinWindow& window() const { return window_; }
  std::string type_name() const override { return "WindowAttention"; }

 private:
  SwinWindow window_;
};

}  // namespace rv::models
