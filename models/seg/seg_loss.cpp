// seg_loss.cpp: seg_cross_entropy: resize the logits to the labels, per-pixel CE, mmseg's reduction.
#include "models/seg/seg_loss.h"

#include <limits>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/interpolate.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"

namespace rv::models::seg {

Tensor seg_cross_entropy(const Tensor& logits, const Tensor& labels, const SegLossOptions& opt) {
  if (logits.dim() != 4) throw std::invalid_argument("seg_cross_entropy: expected logits (B, K, h, w), got " + shape_str(logits.shape()));
  if (labels.dim() != 3 || labels.size(0) != logits.size(0) || !is_integral(labels.dtype()) || labels.dtype() == DType::boolean)
    throw std::invalid_argument("seg_cross_entropy: expected integer labels (B, H, W) with B = " +
                                std::to_string(logits.size(0)) + ", got " + std::string(dtype_name(labels.dtype())) + " " +
                                shape_str(labels.shape()));
  const int64_t H = labels.size(1), W = labels.size(2);
  Tensor x = logits;
  if (x.size(2) != H || x.size(3) != W) x = interpolate(x, {.size = {H, W}, .mode = "bilinear", .align_corners = false});
  Tensor per_pixel = cross_entropy(x, labels, {.ignore_index = opt.ignore_index, .reduction = Reduction::none});  // (B, H, W)
  double denom;
  if (opt.avg_non_ignore) {
    int64_t valid = 0;
    for (double v : labels.to_double_vector()) valid += (int64_t(v) != opt.ignore_index);
    denom = double(valid) + double(std::numeric_limits<float>::epsilon());
  } else {
    denom = double(labels.numel());
  }
  if (denom == 0.0) denom = 1.0;  // an empty batch: the sum is 0, so is the loss
  return mul(sum(per_pixel), opt.loss_weight / denom);
}

}  // namespace rv::models::seg
