// swin_block.cpp: the Swin block: shifted-window attention and MLP, each in a pre-norm residual.
#include "models/swin_block.h"

#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/pad.h"
#include "engine/ops/shape.h"

namespace rv::models {

SwinBlock::SwinBlock(int64_t dim, int64_t num_heads, int64_t res_h, int64_t res_w, int64_t ws, bool shifted,
                     double drop_path, const ModelConfig& cfg, Generator& gen)
    : H_(res_h), W_(res_w), window_(swin_block_window(res_h, res_w, ws, shifted)) {
  // Whole windows: pad the bottom and right up to the next multiple of the window.
  Hp_ = (H_ + window_.wh - 1) / window_.wh * window_.wh;
  Wp_ = (W_ + window_.ww - 1) / window_.ww * window_.ww;
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(dim, cfg.norm_eps));
  attn = register_module("attn", std::make_shared<SwinWindowAttention>(dim, num_heads, window_, cfg, gen));
  drop_path1 = register_module("drop_path1", std::make_shared<nn::DropPath>(drop_path));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(dim, cfg.norm_eps));
  const auto hidden = int64_t(double(dim) * cfg.mlp_ratio);
  mlp = register_module("mlp", std::make_shared<nn::Mlp>(dim, hidden, dim, gen, nullptr, cfg.proj_drop_rate));
  drop_path2 = register_module("drop_path2", std::make_shared<nn::DropPath>(drop_path));
  if (window_.shifted()) attn_mask = register_buffer("attn_mask", swin_shift_mask(Hp_, Wp_, window_), false);
}

Tensor SwinBlock::window_attention(const Tensor& x) {
  Tensor h = x;
  if (window_.shifted()) h = roll(h, {-window_.sh, -window_.sw}, {1, 2});
  if (Hp_ != H_ || Wp_ != W_) h = pad(h, {0, 0, 0, Wp_ - W_, 0, Hp_ - H_});  // (B, Hp, Wp, C), zeros
  Tensor windows = swin_partition(h, window_.wh, window_.ww);                // (B*nW, N, C)
  windows = attn->forward_windows(windows, attn_mask);
  h = swin_reverse(windows, window_.wh, window_.ww, Hp_, Wp_);               // (B, Hp, Wp, C)
  if (Hp_ != H_ || Wp_ != W_) h = h.narrow(1, 0, H_).narrow(2, 0, W_);
  if (window_.shifted()) h = roll(h, {window_.sh, window_.sw}, {1, 2});
  return h;
}

Tensor SwinBlock::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != H_ || x.size(2) != W_)
    throw std::invalid_argument("SwinBlock: expected x (B, " + std::to_string(H_) + ", " + std::to_string(W_) +
                                ", C) at the resolution it was built for, got " + shape_str(x.shape()));
  const int64_t B = x.size(0), C = x.size(3);
  Tensor y = add(x, drop_path1->forward(window_attention(norm1->forward(x))));
  Tensor t = y.reshape({B, H_ * W_, C});                                     // (B, N, C)
  t = add(t, drop_path2->forward(mlp->forward(norm2->forward(t))));
  return t.reshape({B, H_, W_, C});
}

}  // namespace rv::models
