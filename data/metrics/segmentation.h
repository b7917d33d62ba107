// segmentation.h: semantic-segmentation metrics as mmsegmentation's IoUMetric computes them:
// mIoU, mAcc and aAcc from per-class areas summed over the whole evaluation set.
//
// Per image (mmseg's intersect_and_union, mmseg/evaluation/metrics/iou_metric.py):
//   keep the pixels whose label != ignore_index (255);
//   intersect = pixels of those where pred == label;
//   area_intersect[c], area_pred[c], area_label[c] = histograms over c = 0..num_classes-1 of
//     intersect, pred and label (torch.histc over [0, num_classes-1]: a value outside
//     0..num_classes-1 falls in no bin, so such a pred or label pixel counts for no class);
//   area_union = area_pred + area_label - area_intersect.
// Over the set: the four histograms are summed over all images (never per-image IoUs averaged),
// then
//   IoU[c] = I[c] / U[c]   Acc[c] = I[c] / L[c]   (0/0 = NaN: the class is "absent")
//   aAcc = sum(I) / sum(L)   mIoU = nanmean(IoU)   mAcc = nanmean(Acc)
// nanmean skips NaN: a class absent from both prediction and label (U = 0) is left out of mIoU;
// one predicted but never labelled has IoU 0 (counted) and Acc NaN (left out of mAcc).
// mmseg does the divisions in float32 and reports percentages rounded to 2 places; we keep exact
// integer areas and divide in double, returning fractions in [0, 1].
//
// The areas are integers in a struct that adds, so ranks (and images) can be summed exactly in
// any order before the metrics are formed.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rv::data {

inline constexpr int64_t kSegIgnoreIndex = 255;

struct SegAreas {
  std::vector<int64_t> intersect, union_, pred, label;  // each (num_classes,)

  SegAreas() = default;
  explicit SegAreas(int64_t num_classes);
  int64_t num_classes() const { return int64_t(intersect.size()); }
  // Adds another set's areas; both must have the same num_classes.
  SegAreas& operator+=(const SegAreas& o);
};

// The areas of one prediction / label pair: integer tensors (u8, i32 or i64) of one shape, e.g.
// (H, W) or (B, H, W); any strides. Throws std::invalid_argument naming the argument on a
// dtype or shape mismatch, or num_classes < 1.
SegAreas seg_areas(const Tensor& pred, const Tensor& label, int64_t num_classes,
                   int64_t ignore_index = kSegIgnoreIndex);

struct SegMetrics {
  double aacc = 0, miou = 0, macc = 0;  // fractions; NaN when there is nothing to average
  std::vector<double> iou, acc;         // per class, NaN where undefined
};
SegMetrics seg_metrics(const SegAreas& areas);

// ADE20k's label shift (mmseg's reduce_zero_label, applied when the labels are loaded):
// 0 ("other objects", not evaluated) -> 255, v -> v - 1, and 255 stays 255. Exactly mmseg's
// three steps: label[label == 0] = 255; label = label - 1; label[label == 254] = 255.
// Returns a new contiguous tensor of the same integer dtype (u8, i32 or i64).
Tensor reduce_zero_label(const Tensor& label);

}  // namespace rv::data
