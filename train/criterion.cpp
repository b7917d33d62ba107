// criterion.cpp: ce / bce on hard or soft targets (see criterion.h).
#include "train/criterion.h"

#include <stdexcept>

#include "data/mixup.h"
#include "engine/ops/loss.h"

namespace rv::train {

Criterion::Criterion(std::string loss, double label_smoothing, int64_t num_classes)
    : loss_(std::move(loss)), smoothing_(label_smoothing), classes_(num_classes) {
  if (loss_ != "ce" && loss_ != "bce")
    throw std::invalid_argument("train.loss: expected ce or bce, got '" + loss_ + "'");
}

Tensor Criterion::operator()(const Tensor& logits, const Tensor& target) const {
  const bool soft = is_floating(target.dtype());
  if (loss_ == "ce") {
    if (soft) return cross_entropy(logits, target);
    return cross_entropy(logits, target, {.label_smoothing = smoothing_});
  }
  // bce: one target probability per class.
  const Tensor t = soft ? target : data::mixup_target(target, classes_, 1.0, smoothing_);
  return binary_cross_entropy_with_logits(logits, t);
}

}  // namespace rv::train
