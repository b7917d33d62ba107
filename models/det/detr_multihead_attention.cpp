// detr_multihead_attention.cpp: TorchMultiheadAttention and DetrMultiheadAttention
// (detr_multihead_attention.h). The product goes through scaled_dot_product_attention, whose bool mask
// means "keep": PyTorch's "blocked" masks are turned around on the host (they never need gradients).
#include "models/det/detr_multihead_attention.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/mask.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/softmax.h"

namespace rv::models::det {

namespace {

constexpr const char* kDetrMultiheadAttentionName = "MultiheadAttention";

std::string detr_multihead_attention_str(int64_t v) { return std::to_string(v); }

std::vector<bool> bool_values(const Tensor& m) {
  const Tensor c = (m.device().is_cpu() ? m : m.cpu()).to(DType::boolean).contiguous();
  const bool* p = c.data<bool>();
  return std::vector<bool>(p, p + c.numel());
}

// The "keep" mask (B or 1, 1, Nq, Nk) for scaled_dot_product_attention from PyTorch's blocked masks.
Tensor keep_mask(const Tensor& attn_mask, const Tensor& key_padding_mask, int64_t B, int64_t Nq, int64_t Nk,
                 Device device) {
  if (attn_mask.defined() && (attn_mask.shape() != Shape{Nq, Nk} ||
                              (attn_mask.dtype() != DType::boolean && attn_mask.dtype() != DType::u8)))
    throw std::invalid_argument(std::string(kDetrMultiheadAttentionName) + ": expected a bool attn_mask (" + detr_multihead_attention_str(Nq) + ", " + detr_multihead_attention_str(Nk) +
                                "), true = blocked, got " + dtype_name(attn_mask.dtype()) + " " +
                                shape_str(attn_mask.shape()));
  if (key_padding_mask.defined() &&
      (key_padding_mask.shape() != Shape{B, Nk} ||
       (key_padding_mask.dtype() != DType::boolean && key_padding_mask.dtype() != DType::u8)))
    throw std::invalid_argument(std::string(kDetrMultiheadAttentionName) + ": expected a bool key_padding_mask (" + detr_multihead_attention_str(B) + ", " +
                                detr_multihead_attention_str(Nk) + "), true = padding, got " + dtype_name(key_padding_mask.dtype()) + " " +
                                shape_str(key_padding_mask.shape()));
  const std::vector<bool> am = attn_mask.defined() ? bool_values(attn_mask) : std::vector<bool>();
  const std::vector<bool> kp = key_padding_mask.defined() ? bool_values(key_padding_mask) : std::vector<bool>();
  const int64_t Bm = kp.empty() ? 1 : B;
  Tensor keep = empty({Bm, 1, Nq, Nk}, DType::boolean);
  bool* k = keep.data<bool>();
  for (int64_t b = 0; b < Bm; ++b)
    for (int64_t i = 0; i < Nq; ++i)
      for (int64_t j = 0; j < Nk; ++j)
        k[(b * Nq + i) * Nk + j] = !(am.empty() ? false : am[size_t(i * Nk + j)]) &&
                                   !(kp.empty() ? false : kp[size_t(b * Nk + j)]);
  return device.is_cpu() ? keep : keep.to(device);
}

}  // namespace

TorchMultiheadAttention::TorchMultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout, Generator& gen)
    : C_(embed_dim), NH_(num_heads) {
  if (C_ <= 0 || NH_ <= 0 || C_ % NH_ != 0)
    throw std::invalid_argument(std::string(kDetrMultiheadAttentionName) + ": expected embed_dim divisible by num_heads (both positive), got " +
                                detr_multihead_attention_str(C_) + " and " + detr_multihead_attention_str(NH_));
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * C_, C_}));
  in_proj_bias = register_parameter("in_proj_bias", zeros({3 * C_}));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(C_, C_, gen));
  attn_drop = register_module("attn_drop", std::make_shared<nn::Dropout>(dropout));
  nn::init::xavier_uniform_(in_proj_weight, gen);
  nn::init::zeros_(out_proj->bias);
}

Tensor TorchMultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                        const Tensor& attn_mask, const Tensor& key_padding_mask) {
  if (query.dim() != 3 || query.size(2) != C_)
    throw std::invalid_argument(std::string(kDetrMultiheadAttentionName) + ": expected `query` (B, Nq, " + detr_multihead_attention_str(C_) + "), got " +
                                shape_str(query.shape()));
  const int64_t B = query.size(0), Nq = query.size(1);
  if (key.dim() != 3 || key.size(0) != B || key.size(2) != C_ || value.shape() != key.shape())
    throw std::invalid_argument(std::string(kDetrMultiheadAttentionName) + ": expected `key` and `value` of one shape (" + detr_multihead_attention_str(B) + ", Nk, " +
                                detr_multihead_attention_str(C_) + "), got " + shape_str(key.shape()) + " and " + shape_str(value.shape()));
  const int64_t Nk = key.size(1), HD = C_ / NH_;
  // x (B, N, C) -> block i of in_proj -> (B, NH, N, HD)
  auto project = [&](const Tensor& x, int64_t i) {
    const int64_t N = x.size(1);
    return linear(x, in_proj_weight.narrow(0, i * C_, C_), in_proj_bias.narrow(0, i * C_, C_))
        .reshape({B, N, NH_, HD})
        .permute({0, 2, 1, 3});
  };
  const Tensor q = project(query, 0), k = project(key, 1), v = project(value, 2);
  Tensor keep;
  if (attn_mask.defined() || key_padding_mask.defined())
    keep = keep_mask(attn_mask, key_padding_mask, B, Nq, Nk, query.device());
  const double scale = 1.0 / std::sqrt(double(HD));
  Tensor o;  // (B, NH, Nq, HD)
  if (is_training() && attn_drop->p() > 0.0) {
    // Dropout on the probabilities needs them in memory: spell the product out.
    Tensor scores = mul(matmul(q, k.transpose(-2, -1)), scale);  // (B, NH, Nq, Nk)
    if (keep.defined()) scores = masked_fill(scores, logical_not(keep), -INFINITY);
    o = matmul(attn_drop->forward(softmax(scores, -1)), v);
  } else {
    o = scaled_dot_product_attention(q, k, v, Tensor(), keep, scale);
  }
  return out_proj->forward(o.transpose(1, 2).reshape({B, Nq, C_}));
}

DetrMultiheadAttention::DetrMultiheadAttention(int64_t embed_dim, int64_t num_heads, double attn_drop, double proj_drop_p,
                                               Generator& gen) {
  attn = register_module("attn", std::make_shared<TorchMultiheadAttention>(embed_dim, num_heads, attn_drop, gen));
  proj_drop = register_module("proj_drop", std::make_shared<nn::Dropout>(proj_drop_p));
}

Tensor DetrMultiheadAttention::forward(const Tensor& x, const Tensor& query_pos, const Tensor& attn_mask,
                                       const Tensor& key_padding_mask) {
  const Tensor qk = query_pos.defined() ? add(x, query_pos) : x;  // positions on q and k, not on v
  return add(x, proj_drop->forward(attn->forward(qk, qk, x, attn_mask, key_padding_mask)));
}

}  // namespace rv::models::det
