// attention.h: nn::Attention, plain multi-head self-attention over tokens (timm's Attention).
//
//   x (B, N, C) -> qkv: Linear(C, 3C) -> q, k, v (B, NH, N, HD)  [HD = C / NH]
//     -> optional qk transform (RoPE goes here) -> softmax(q kᵀ HD^-0.5 + bias) v
//     -> (B, N, C) -> proj: Linear(C, C) -> proj_drop
//
// Children carry timm's names (`qkv`, `attn_drop`, `proj`, `proj_drop`), so the state dict is
// `qkv.weight, [qkv.bias,] proj.weight, proj.bias`. The product goes through
// scaled_dot_product_attention (engine/ops/attention.h), which picks the fused kernel for long
// sequences. Only in training with attn_drop > 0 does the module spell the attention out
// (matmul, softmax, dropout, matmul), since dropout on the probabilities needs them in memory.
//
// qkv_bias defaults to false as in timm's class; timm's ViT passes true.
#pragma once
#include <functional>
#include <memory>
#include <utility>

#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"

namespace rv::nn {

class Attention : public UnaryModule {
 public:
  // Maps (q, k), each (B, NH, N, HD), to new (q, k) of the same shapes: rotary position
  // embedding, or a norm on q and k. It must leave v alone, so it only sees q and k.
  using QKTransform = std::function<std::pair<Tensor, Tensor>(const Tensor& q, const Tensor& k)>;

  std::shared_ptr<Linear> qkv;        // (3C, C): rows [0, C) make q, [C, 2C) k, [2C, 3C) v
  std::shared_ptr<Dropout> attn_drop;  // on the attention probabilities
  std::shared_ptr<Linear> proj;       // (C, C)
  std::shared_ptr<Dropout> proj_drop;

  // dim = C must be divisible by num_heads. qkv then proj draw their default init from `gen`;
  // the dropouts get their Generator through nn::set_generator (see dropout.h).
  Attention(int64_t dim, int64_t num_heads, Generator& gen, bool qkv_bias = false, double attn_drop = 0.0,
            double proj_drop = 0.0);

  Tensor forward(const Tensor& x) override { return forward(x, QKTransform(), Tensor()); }
  // x (B, N, C) -> (B, N, C).
  // qk: applied to q and k after the head split (skipped when empty).
  // bias: optional additive float bias on the scaled scores, of shape (G, NH, N, N) or anything
  //   that broadcasts to it, with G dividing B: batch element b gets bias[b % G]. G = 1 or B is
  //   ordinary broadcasting; G = nW serves Swin's windows, where x holds the nW windows of each
  //   image consecutively (B = images * nW) and the bias is the relative position bias plus the
  //   shifted-window mask (nW, NH, N, N), without copying it for every image.
  Tensor forward(const Tensor& x, const QKTransform& qk, const Tensor& bias = Tensor());

  int64_t dim() const { return dim_; }
  int64_t num_heads() const { return heads_; }
  int64_t head_dim() const { return dim_ / heads_; }
  double scale() const { return scale_; }  // HD^-0.5

 private:
  int64_t dim_, heads_;
  double scale_;
};

}  // namespace rv::nn
