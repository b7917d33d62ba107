// criterion.h: the training loss of a run (train.loss, train.label_smoothing), on hard labels or
// on the soft targets Mixup / CutMix make.
//
//   ce,  hard labels:  cross_entropy(logits, labels, label_smoothing = s)
//   ce,  soft targets: cross_entropy(logits, targets)            (the smoothing is in the targets)
//   bce, hard labels:  BCE-with-logits(logits, smooth(one_hot(labels)))   DeiT-III's loss
//   bce, soft targets: BCE-with-logits(logits, targets)
// smooth(y) = (1 - s) y + s / K, as timm's BinaryCrossEntropy and data/mixup.h.
// All are means over the batch (BCE: over batch and classes, as torch's default).
#pragma once
#include <string>

#include "engine/tensor.h"

namespace rv::train {

class Criterion {
 public:
  Criterion(std::string loss, double label_smoothing, int64_t num_classes);  // loss: ce | bce
  // logits (B, K); target: labels (B,) integer, or soft targets (B, K) float.
  Tensor operator()(const Tensor& logits, const Tensor& target) const;
  double label_smoothing() const { return smoothing_; }

 private:
  std::string loss_;
  double smoothing_;
  int64_t classes_;
};

}  // namespace rv::train
