// seg_loss.h: the segmentation loss of mmseg's decode heads (BaseDecodeHead.loss_by_feat with
// CrossEntropyLoss), and its reduction rule.
//
//   logits (B, K, h, w) --bilinear (align_corners false) to the label size--> (B, K, H, W)
//   labels (B, H, W) integer (u8 from data/seg_dataset.h), ignore_index (255) = no loss
//   per-pixel CE -> reduced -> times loss_weight
//
// The reduction. mmseg's CrossEntropyLoss has avg_non_ignore = False by default, and its UperNet
// ADE20k configs (configs/_base_/models/upernet_*.py, upernet_swin.py) do not set it: the summed
// loss of the valid pixels is divided by ALL B*H*W pixels, ignored ones included (F.cross_entropy
// with reduction 'none' gives them 0, then .mean()). avg_non_ignore = true divides by the number
// of valid pixels plus float32 eps instead (mmseg's weight_reduce_loss avg_factor), which is
// PyTorch's own mean up to that eps and gives 0, not NaN, when every pixel is ignored.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::models::seg {

struct SegLossOptions {
  int64_t ignore_index = 255;
  bool avg_non_ignore = false;  // mmseg's default and its UperNet configs: false
  double loss_weight = 1.0;     // 0.4 for the auxiliary FCN head
};

// Differentiable in logits. Returns a scalar ().
Tensor seg_cross_entropy(const Tensor& logits, const Tensor& labels, const SegLossOptions& options = {});

}  // namespace rv::models::seg
