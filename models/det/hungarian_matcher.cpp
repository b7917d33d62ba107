// hungarian_matcher.cpp: DINO's matching cost (focal class cost, L1 and -GIoU on boxes) and the
// per-image assignment (see hungarian_matcher.h).
#include "models/det/hungarian_matcher.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "models/det/box_ops.h"
#include "models/det/linear_assignment.h"

namespace rv::models::det {

namespace {

void check_target(const DetTarget& t, int64_t K, const std::string& where) {
  if (!t.labels.defined() || !t.boxes.defined())
    throw std::invalid_argument(where + ": expected defined labels and boxes (use (0) and (0, 4) tensors for no objects)");
  if (t.labels.dim() != 1 || !is_integral(t.labels.dtype()) || t.labels.dtype() == DType::boolean)
    throw std::invalid_argument(where + ": expected integer labels of shape (T), got " +
                                std::string(dtype_name(t.labels.dtype())) + " " + shape_str(t.labels.shape()));
  if (t.boxes.dim() != 2 || t.boxes.size(1) != 4 || t.boxes.size(0) != t.labels.size(0) || !is_floating(t.boxes.dtype()))
    throw std::invalid_argument(where + ": expected float boxes of shape (" + std::to_string(t.labels.size(0)) +
                                ", 4), got " + std::string(dtype_name(t.boxes.dtype())) + " " + shape_str(t.boxes.shape()));
  for (double v : t.labels.to_double_vector())
    if (v < 0 || v >= double(K))
      throw std::out_of_range(where + ": label " + std::to_string(int64_t(v)) + " is outside [0, " + std::to_string(K) + ")");
}

// -log(x + 1e-8): the 1e-8 keeps the focal costs finite at p = 0 or 1 (as Deformable DETR / DINO).
Tensor minus_log_eps(const Tensor& x) { return neg(log(add(x, 1e-8))); }

}  // namespace

Tensor matching_cost(const Tensor& logits, const Tensor& boxes, const DetTarget& target, const MatcherCosts& c) {
  if (logits.dim() != 2 || !is_floating(logits.dtype()))
    throw std::invalid_argument("matching_cost: expected float logits of shape (Q, K), got " +
                                std::string(dtype_name(logits.dtype())) + " " + shape_str(logits.shape()));
  const int64_t Q = logits.size(0), K = logits.size(1);
  if (boxes.dim() != 2 || boxes.size(0) != Q || boxes.size(1) != 4 || !is_floating(boxes.dtype()))
    throw std::invalid_argument("matching_cost: expected float boxes of shape (" + std::to_string(Q) + ", 4), got " +
                                std::string(dtype_name(boxes.dtype())) + " " + shape_str(boxes.shape()));
  check_target(target, K, "matching_cost: target");
  const int64_t T = target.labels.size(0);
  if (T == 0) return zeros({Q, 0}, DType::f64);

  autograd::NoGradGuard no_grad;  // the matching is a choice, not a function to differentiate
  const Tensor p = sigmoid(logits.to(DType::f64));  // (Q, K)
  // The focal loss of calling each (query, class) positive, and of calling it negative.
  const double a = c.focal_alpha, g = c.focal_gamma;
  const Tensor neg_cost = mul(pow(p, g), 1.0 - a) * minus_log_eps(1.0 - p);
  const Tensor pos_cost = mul(pow(1.0 - p, g), a) * minus_log_eps(p);
  const Tensor labels = target.labels.to(DType::i64);
  const Tensor cost_class = index_select(pos_cost - neg_cost, 1, labels);  // (Q, T)

  const Tensor pb = boxes.to(DType::f64), tb = target.boxes.to(DType::f64);
  const Tensor cost_bbox = sum(abs(pb.unsqueeze(1) - tb.unsqueeze(0)), {-1});  // (Q, T): L1 distance in cxcywh
  const Tensor cost_giou = neg(generalized_box_iou(box_cxcywh_to_xyxy(pb), box_cxcywh_to_xyxy(tb)));  // (Q, T)
  return mul(cost_bbox, c.cost_bbox) + mul(cost_class, c.cost_class) + mul(cost_giou, c.cost_giou);
}

std::vector<MatchIndices> hungarian_match(const Tensor& pred_logits, const Tensor& pred_boxes,
                                          const std::vector<DetTarget>& targets, const MatcherCosts& costs) {
  if (pred_logits.dim() != 3)
    throw std::invalid_argument("hungarian_match: expected pred_logits of shape (B, Q, K), got " +
                                shape_str(pred_logits.shape()));
  const int64_t B = pred_logits.size(0), Q = pred_logits.size(1);
  if (pred_boxes.dim() != 3 || pred_boxes.size(0) != B || pred_boxes.size(1) != Q || pred_boxes.size(2) != 4)
    throw std::invalid_argument("hungarian_match: expected pred_boxes of shape (" + std::to_string(B) + ", " +
                                std::to_string(Q) + ", 4), got " + shape_str(pred_boxes.shape()));
  if (int64_t(targets.size()) != B)
    throw std::invalid_argument("hungarian_match: expected one target per image (" + std::to_string(B) + "), got " +
                                std::to_string(targets.size()));
  std::vector<MatchIndices> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const Tensor cost = matching_cost(pred_logits.select(0, b), pred_boxes.select(0, b), targets[size_t(b)], costs);
    const Assignment a = linear_sum_assignment(cost.to_vector<double>(), Q, cost.size(1));
    out[size_t(b)] = {a.row_ind, a.col_ind};
  }
  return out;
}

}  // namespace rv::models::det
