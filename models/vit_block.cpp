// vit_block.cpp: LayerScale and VitBlock (pre-norm attention + MLP with LayerScale, drop path, RoPE).
#include "models/vit_block.h"

#include <stdexcept>
#include <string>

#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/rope.h"
#include "engine/ops/shape.h"

namespace rv::models {

LayerScale::LayerScale(int64_t dim, double init_value) {
  Tensor g = empty({dim});
  nn::init::constant_(g, init_value);
  gamma = register_parameter("gamma", g);
}

Tensor LayerScale::forward(const Tensor& x) { return mul(x, gamma); }

VitBlock::VitBlock(const VitBlockOptions& opt, Generator& gen) : opt_(opt) {
  if (opt.mlp_ratio <= 0 || opt.dim <= 0)
    throw std::invalid_argument("VitBlock: expected dim > 0 and mlp_ratio > 0, got dim " + std::to_string(opt.dim));
  const bool ls = opt.layer_scale_init != 0.0;
  const bool eva = opt.naming == LayerScaleNaming::eva;
  // Registration order = state dict order; eva's gammas are the block's own parameters, which
  // PyTorch lists before any child's.
  if (ls && eva) {
    Tensor g1 = empty({opt.dim}), g2 = empty({opt.dim});
    gamma_1 = register_parameter("gamma_1", nn::init::constant_(g1, opt.layer_scale_init));
    gamma_2 = register_parameter("gamma_2", nn::init::constant_(g2, opt.layer_scale_init));
  }
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(opt.dim, opt.norm_eps));
  attn = register_module("attn", std::make_shared<nn::Attention>(opt.dim, opt.num_heads, gen, opt.qkv_bias,
                                                                 opt.attn_drop, opt.proj_drop));
  if (ls && !eva) ls1 = register_module("ls1", std::make_shared<LayerScale>(opt.dim, opt.layer_scale_init));
  drop_path1 = register_module("drop_path1", std::make_shared<nn::DropPath>(opt.drop_path));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(opt.dim, opt.norm_eps));
  const int64_t hidden = int64_t(double(opt.dim) * opt.mlp_ratio);  // timm: int(dim * mlp_ratio)
  mlp = register_module("mlp", std::make_shared<nn::Mlp>(opt.dim, hidden, opt.dim, gen, nullptr, opt.proj_drop));
  if (ls && !eva) ls2 = register_module("ls2", std::make_shared<LayerScale>(opt.dim, opt.layer_scale_init));
  drop_path2 = register_module("drop_path2", std::make_shared<nn::DropPath>(opt.drop_path));
}

Tensor VitBlock::scale(const Tensor& branch, int which) {
  if (which == 1) {
    if (ls1) return ls1->forward(branch);
    if (gamma_1.defined()) return mul(branch, gamma_1);
  } else {
    if (ls2) return ls2->forward(branch);
    if (gamma_2.defined()) return mul(branch, gamma_2);
  }
  return branch;
}

Tensor VitBlock::forward(const Tensor& x, const Tensor& rope_angles, int64_t num_prefix_tokens) {
  nn::Attention::QKTransform rope;
  if (rope_angles.defined())
    rope = [&](const Tensor& q, const Tensor& k) {  // q, k (B, NH, N, HD): CLS left as is
      return std::make_pair(rope_apply(q, rope_angles, num_prefix_tokens), rope_apply(k, rope_angles, num_prefix_tokens));
    };
  Tensor y = add(x, drop_path1->forward(scale(attn->forward(norm1->forward(x), rope), 1)));
  return add(y, drop_path2->forward(scale(mlp->forward(norm2->forward(y)), 2)));
}

Tensor VitBlock::forward_windowed(const Tensor& x, Grid grid, int64_t window, const Tensor& rope_angles) {
  const int64_t Gh = grid.h, Gw = grid.w, ws = window;
  if (x.dim() != 3 || x.size(1) != Gh * Gw)
    throw std::invalid_argument("VitBlock::forward_windowed: expected tokens (B, " + std::to_string(Gh * Gw) +
                                ", C) for a " + std::to_string(Gh) + "x" + std::to_string(Gw) + " grid, got " +
                                shape_str(x.shape()));
  if (ws <= 0) throw std::invalid_argument("VitBlock::forward_windowed: window must be positive");
  const int64_t B = x.size(0), C = x.size(2);
  const int64_t Hp = (Gh + ws - 1) / ws * ws, Wp = (Gw + ws - 1) / ws * ws;
  Tensor h = norm1->forward(x).reshape({B, Gh, Gw, C});
  // zero padding at the bottom / right, made with cat (recorded, and on the tokens' device)
  if (Wp > Gw) h = cat({h, zeros({B, Gh, Wp - Gw, C}, h.dtype(), h.device())}, 2);
  if (Hp > Gh) h = cat({h, zeros({B, Hp - Gh, Wp, C}, h.dtype(), h.device())}, 1);
  // (B, Hp, Wp, C) -> (B * nW, ws * ws, C): window index b * nW + row * (Wp / ws) + column
  const int64_t nh = Hp / ws, nw = Wp / ws;
  Tensor windows = h.reshape({B, nh, ws, nw, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B * nh * nw, ws * ws, C});
  nn::Attention::QKTransform rope;
  if (rope_angles.defined())
    rope = [&](const Tensor& q, const Tensor& k) {
      return std::make_pair(rope_apply(q, rope_angles, 0), rope_apply(k, rope_angles, 0));
    };
  Tensor a = attn->forward(windows, rope);
  // back to the grid, padding cropped
  a = a.reshape({B, nh, nw, ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, Hp, Wp, C});
  a = a.narrow(1, 0, Gh).narrow(2, 0, Gw).reshape({B, Gh * Gw, C});
  Tensor y = add(x, drop_path1->forward(scale(a, 1)));
  return add(y, drop_path2->forward(scale(mlp->forward(norm2->forward(y)), 2)));
}

}  // namespace rv::models
