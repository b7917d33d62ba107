// hungarian_matcher.h: DINO's (and Deformable DETR's) HungarianMatcher: pairs each target box of
// an image with one query, the pairing of least total cost, so that every object is predicted
// by exactly one query and the remaining queries learn "no object".
//
// The cost of query q for target t (per image, Q x T), with DINO's weights 2 / 5 / 2:
//   cost_class * C_focal(q, label t)  +  cost_bbox * |box_q - box_t|_1 (cxcywh)
//                                     +  cost_giou * (-GIoU(xyxy(box_q), xyxy(box_t)))
// where the focal class cost on p = sigmoid(logit) (alpha 0.25, gamma 2) is
//   C_focal = alpha (1 - p)^gamma (-log(p + 1e-8)) - (1 - alpha) p^gamma (-log(1 - p + 1e-8)),
// the focal loss of calling the query positive minus that of calling it negative. The pairing is
// linear_sum_assignment (models/det/linear_assignment.h) on that matrix.
//
// No gradient flows through the matching. Costs are computed in f64 whatever the input dtype
// (PyTorch computes them in the input dtype; f64 makes near-ties resolve by the true costs).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rv::models::det {

// One image's ground truth: labels (T) integer in [0, K), boxes (T, 4) normalised cxcywh, float.
// T may be 0.
struct DetTarget {
  Tensor labels;
  Tensor boxes;
};

// One image's matching: query[k] is paired with target[k]; query ascending (scipy's order).
// min(Q, T) pairs.
struct MatchIndices {
  std::vector<int64_t> query;
  std::vector<int64_t> target;
};

struct MatcherCosts {
  double cost_class = 2.0;  // DINO's set_cost_class
  double cost_bbox = 5.0;   // set_cost_bbox
  double cost_giou = 2.0;   // set_cost_giou
  double focal_alpha = 0.25;
  double focal_gamma = 2.0;
};

// The Q x T cost matrix of one image: logits (Q, K), boxes (Q, 4) cxcywh -> f64 (Q, T).
Tensor matching_cost(const Tensor& logits, const Tensor& boxes, const DetTarget& target, const MatcherCosts& costs = {});

// pred_logits (B, Q, K), pred_boxes (B, Q, 4) cxcywh, one DetTarget per image -> one
// MatchIndices per image.
std::vector<MatchIndices> hungarian_match(const Tensor& pred_logits, const Tensor& pred_boxes,
                                          const std::vector<DetTarget>& targets, const MatcherCosts& costs = {});

}  // namespace rv::models::det
