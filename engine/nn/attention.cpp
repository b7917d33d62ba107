// attention.cpp: nn::Attention — the head split, the optional q/k transform, the bias grouping for
// windowed attention, and the product through scaled_dot_product_attention.
#include "engine/nn/attention.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"
#include "engine/ops/softmax.h"

namespace rv::nn {

Attention::Attention(int64_t dim, int64_t num_heads, Generator& gen, bool qkv_bias, double attn_drop_p,
                     double proj_drop_p)
    : dim_(dim), heads_(num_heads) {
  if (dim <= 0 || num_heads <= 0 || dim % num_heads != 0)
    throw std::invalid_argument("Attention: expected dim divisible by num_heads (both positive), got dim " +
                                std::to_string(dim) + " and " + std::to_string(num_heads) + " heads");
  scale_ = 1.0 / std::sqrt(double(head_dim()));
  qkv = register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, gen, qkv_bias));
  attn_drop = register_module("attn_drop", std::make_shared<Dropout>(attn_drop_p));
  proj = register_module("proj", std::make_shared<Linear>(dim, dim, gen));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(proj_drop_p));
}

Tensor Attention::forward(const Tensor& x, const QKTransform& qk, const Tensor& bias) {
  const std::string where = "Attention(" + std::to_string(dim_) + ", " + std::to_string(heads_) + " heads)";
  if (x.dim() != 3 || x.size(2) != dim_)
    throw std::invalid_argument(where + ": expected x (B, N, " + std::to_string(dim_) + "), got shape " +
                                shape_str(x.shape()));
  const int64_t B = x.size(0), N = x.size(1), NH = heads_, HD = head_dim();

  // q, k, v = x W_q^T + b_q, ... with W_q, W_k, W_v the three row blocks of qkv.weight (3C, C),
  // each (B, N, C) -> (B, N, NH, HD) -> a (B, NH, N, HD) view. Three products on weight slices
  // rather than one (B, N, 3C) product sliced afterwards: the same products, but the backward
  // then slices only the small weight (3C x C) instead of zero-filling and summing three
  // activation-sized (B, N, 3C) gradients (~10% of a tiny ViT's training step).
  auto project = [&](int64_t i) {
    Tensor w = qkv->weight.narrow(0, i * dim_, dim_);
    Tensor b = qkv->bias.defined() ? qkv->bias.narrow(0, i * dim_, dim_) : Tensor();
    return linear(x, w, b).reshape({B, N, NH, HD}).permute({0, 2, 1, 3});
  };
  Tensor q = project(0), k = project(1), v = project(2);
  if (qk) {
    std::tie(q, k) = qk(q, k);
    if (q.shape() != Shape{B, NH, N, HD} || k.shape() != Shape{B, NH, N, HD})
      throw std::invalid_argument(where + ": the q/k transform must keep the shape (B, NH, N, HD) = " +
                                  shape_str({B, NH, N, HD}) + ", got q " + shape_str(q.shape()) + " and k " +
                                  shape_str(k.shape()));
  }

  // A bias with G groups (G dividing B, 1 < G < B): fold the groups into the heads, so that
  // (B/G, G*NH, N, HD) meets a (G*NH, N, N) bias by plain broadcasting.
  Tensor bias_g = bias;
  int64_t G = 1;
  if (bias.defined()) {
    if (bias.dim() > 4)
      throw std::invalid_argument(where + ": expected a bias of at most 4 dims (G, NH, N, N), got " +
                                  shape_str(bias.shape()));
    if (bias.dim() == 4) G = bias.size(0);
    if (G != 1 && (G > B || B % G != 0 || B == 0))
      throw std::invalid_argument(where + ": the bias's leading dim " + std::to_string(G) +
                                  " must be 1 or divide the batch " + std::to_string(B) + " (bias shape " +
                                  shape_str(bias.shape()) + ")");
    if (G != 1 && G != B) {
      bias_g = bias.expand({G, NH, N, N}).reshape({G * NH, N, N});
      q = q.reshape({B / G, G * NH, N, HD});
      k = k.reshape({B / G, G * NH, N, HD});
      v = v.reshape({B / G, G * NH, N, HD});
    }
  }

  Tensor o;  // (B', NH', N, HD)
  if (is_training() && attn_drop->p() > 0.0) {
    Tensor scores = matmul(q, k.transpose(-2, -1)) * scale_;  // (B', NH', N, N)
    if (bias_g.defined()) scores = scores + bias_g;
    o = matmul(attn_drop->forward(softmax(scores, -1)), v);
  } else {
    o = scaled_dot_product_attention(q, k, v, bias_g, Tensor(), scale_);
  }
  // (B, NH, N, HD) -> (B, N, NH, HD) -> (B, N, C)
  Tensor y = o.reshape({B, NH, N, HD}).transpose(1, 2).reshape({B, N, dim_});
  return proj_drop->forward(proj->forward(y));
}

}  // namespace rv::nn
