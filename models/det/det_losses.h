// det_losses.h: the set-prediction losses of DINO (and Deformable DETR) once queries are matched
// to targets (models/det/hungarian_matcher.h):
//
//   classification  sigmoid focal loss over every query and class (unmatched queries learn
//                   "no object" as all-zero targets), alpha 0.25, gamma 2
//   box L1          |pred - target| on normalised cxcywh, matched pairs only
//   box GIoU        1 - GIoU(pred, target) in xyxy, matched pairs only
//
// Each is divided by num_boxes, the number of target boxes in the batch (over all processes in
// distributed training, clamped to >= 1 by the caller as DINO does), so the losses do not grow
// with the number of objects per image. All are differentiable in the predictions, built from
// engine ops (gradients by autograd).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/ops/loss.h"
#include "engine/tensor.h"
#include "models/det/hungarian_matcher.h"

namespace rv::models::det {

// torchvision.ops.sigmoid_focal_loss: per element
//   ce = BCE-with-logits(x, t),  p_t = p t + (1 - p)(1 - t),  p = sigmoid(x)
//   loss = alpha_t * (1 - p_t)^gamma * ce,  alpha_t = alpha t + (1 - alpha)(1 - t)
// (alpha < 0: no alpha_t factor), then reduced. inputs and targets have the same shape; targets
// are in [0, 1] (0/1 one-hot for detection). Differentiable in inputs and targets.
Tensor sigmoid_focal_loss(const Tensor& inputs, const Tensor& targets, double alpha = 0.25, double gamma = 2.0,
                          Reduction reduction = Reduction::none);

// DINO's classification loss: logits (B, Q, K), targets (B, Q, K) one-hot ->
//   focal.mean(1).sum() / num_boxes * Q     (Deformable DETR's sigmoid_focal_loss times Q)
// i.e. the focal loss summed over every query and class, divided by num_boxes. Returns ().
Tensor focal_class_loss(const Tensor& logits, const Tensor& targets, double num_boxes, double alpha = 0.25,
                        double gamma = 2.0);

// Matched boxes, cxcywh, both (M, 4) -> (): sum |pred - target| / num_boxes.
Tensor l1_box_loss(const Tensor& pred_boxes, const Tensor& target_boxes, double num_boxes);

// Matched boxes, cxcywh, both (M, 4) -> (): sum (1 - GIoU(xyxy(pred), xyxy(target))) / num_boxes.
Tensor giou_box_loss(const Tensor& pred_boxes, const Tensor& target_boxes, double num_boxes);

// ---- gathering the matched pairs (DINO's _get_src_permutation_idx and target_classes) -------

// The one-hot classification targets: (B, Q, K) zeros of `dtype`, with a 1 at
// [b, query[k], labels_b[target[k]]] for each matched pair of image b. No gradient.
Tensor focal_targets(const std::vector<MatchIndices>& indices, const std::vector<DetTarget>& targets, int64_t Q,
                     int64_t K, DType dtype);

// The matched predictions in match order (image 0's pairs, then image 1's, ...):
// pred_boxes (B, Q, 4) -> (M, 4), differentiable in pred_boxes.
Tensor matched_predictions(const Tensor& pred_boxes, const std::vector<MatchIndices>& indices);

// Their targets in the same order: (M, 4) of the targets' boxes, as `dtype`. No gradient.
Tensor matched_targets(const std::vector<DetTarget>& targets, const std::vector<MatchIndices>& indices, DType dtype);

}  // namespace rv::models::det
