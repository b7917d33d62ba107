// dino_query_selection.cpp: select_queries and topk_indices (dino_query_selection.h). The class
// logits of all S tokens are computed without gradient (they only choose); the chosen rows of
// output_memory then go through the heads again with gradient, which gives detrex's values and
// gradients (the heads act row by row) at K / S of the backward work.
#include "models/det/dino_query_selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/mask.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"

namespace rv::models::det {

Tensor topk_indices(const Tensor& scores, int64_t k) {
  if (scores.dim() != 2 || k < 0 || k > scores.size(1))
    throw std::invalid_argument("topk_indices: expected scores (B, S) and 0 <= k <= S, got " +
                                shape_str(scores.shape()) + " and k = " + std::to_string(k));
  const int64_t B = scores.size(0), S = scores.size(1);
  const std::vector<double> v = scores.detach().cpu().to_double_vector();
  std::vector<int64_t> out(size_t(B * k));
  std::vector<int64_t> idx(static_cast<size_t>(S));
  for (int64_t b = 0; b < B; ++b) {
    std::iota(idx.begin(), idx.end(), 0);
    const double* row = v.data() + b * S;
    // NaN counts as the largest (as torch.topk); equal scores keep the lower index first
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t i, int64_t j) {
      const double a = row[i], c = row[j];
      if (a == c || (std::isnan(a) && std::isnan(c))) return i < j;
      if (std::isnan(a)) return true;
      if (std::isnan(c)) return false;
      return a > c;
    });
    std::copy(idx.begin(), idx.begin() + k, out.begin() + b * k);
  }
  Tensor t = from_vector(out, {B, k});
  return scores.device().is_cpu() ? t : t.to(scores.device());
}

QuerySelection select_queries(const Tensor& memory, const Tensor& mask_flatten, const LevelShapes& shapes,
                              nn::Linear& enc_output, nn::LayerNorm& enc_output_norm, nn::Linear& class_head,
                              DetrMLP& bbox_head, const Tensor& tgt_embed) {
  if (memory.dim() != 3)
    throw std::invalid_argument("select_queries: expected memory (B, S, C), got " + shape_str(memory.shape()));
  const int64_t B = memory.size(0), S = memory.size(1), C = memory.size(2);
  if (tgt_embed.dim() != 2 || tgt_embed.size(1) != C || tgt_embed.size(0) > S)
    throw std::invalid_argument("select_queries: expected tgt_embed (K, " + std::to_string(C) + ") with K <= S = " +
                                std::to_string(S) + ", got " + shape_str(tgt_embed.shape()));
  const int64_t K = tgt_embed.size(0);
  const EncoderProposals prop = encoder_proposals(mask_flatten, shapes, memory.dtype());
  // zero the memory where the proposal is not kept (padding, or a box too close to the border)
  const Tensor dropped = logical_not(prop.keep).unsqueeze(-1);  // (B, S, 1)
  const Tensor output_memory = enc_output_norm.forward(enc_output.forward(masked_fill(memory, dropped, 0.0)));

  Tensor topk;
  {
    autograd::NoGradGuard no_grad;
    const Tensor best = max(class_head.forward(output_memory), -1).values;  // (B, S)
    topk = topk_indices(best, K);
  }
  // flat row indices b * S + topk[b, k] into (B * S, .)
  std::vector<int64_t> flat = topk.cpu().to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k) flat[size_t(b * K + k)] += b * S;
  Tensor rows = from_vector(flat, {B * K});
  if (!memory.device().is_cpu()) rows = rows.to(memory.device());
  const Tensor chosen = index_select(output_memory.reshape({B * S, C}), 0, rows).reshape({B, K, C});
  const Tensor chosen_prop = index_select(prop.proposals.reshape({B * S, 4}), 0, rows).reshape({B, K, 4});

  QuerySelection out;
  out.topk = topk;
  const Tensor box_logits = add(bbox_head.forward(chosen), chosen_prop);  // (B, K, 4)
  out.enc_boxes = sigmoid(box_logits);
  out.reference_boxes = out.enc_boxes.detach();
  out.enc_logits = class_head.forward(chosen);
  out.content = tgt_embed.unsqueeze(0).expand({B, K, C});
  return out;
}

}  // namespace rv::models::det
