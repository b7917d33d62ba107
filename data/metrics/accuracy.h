// accuracy.h: top-1 / top-5 classification accuracy, kept as integer counts.
//
// Counts rather than percentages so that evaluation is exact on any number of ranks: each rank
// counts its own shard, the counts are summed (an all-reduce of three integers), and only then
// divided. Averaging per-rank percentages would weight ranks with fewer samples wrongly (and a
// sampler that pads the last batch with duplicates would count some samples twice).
//
// Every sample counts: there is no ignore index. A label outside 0..C-1 is an error.
// The rule, for logits x (B, C) and label y of one row:
//   rank(y) = #{ j : x_j > x_y } + #{ j < y : x_j == x_y }
// i.e. the position of y in a stable sort by descending logit (ties go to the lower class index,
// as torch.sort(descending=True, stable=True); NaN counts as larger than any number, as in
// torch.topk). y is in the top k when rank(y) < k. With fewer than 5 classes top-5 is top-C,
// as timm's accuracy() does (maxk = min(5, C)), so every sample is then top-5 correct.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::data {

struct AccuracyCounts {
  int64_t top1 = 0;   // samples whose label has rank 0
  int64_t top5 = 0;   // samples whose label has rank < 5
  int64_t total = 0;  // samples seen

  AccuracyCounts& operator+=(const AccuracyCounts& o) {
    top1 += o.top1;
    top5 += o.top5;
    total += o.total;
    return *this;
  }
  friend AccuracyCounts operator+(AccuracyCounts a, const AccuracyCounts& b) { return a += b; }
  bool operator==(const AccuracyCounts&) const = default;
  // Fractions in [0, 1]; NaN when nothing was counted (no samples: no accuracy).
  double top1_fraction() const;
  double top5_fraction() const;
};

// logits: float (B, C) of any float dtype and strides; labels: integer (B,) (u8, i32 or i64).
// Throws std::invalid_argument naming the argument on a wrong dtype or shape, and
// std::out_of_range for a label outside 0..C-1. B = 0 gives zero counts; C must be at least 1.
AccuracyCounts accuracy_counts(const Tensor& logits, const Tensor& labels);

}  // namespace rv::data
