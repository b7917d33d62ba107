// hungarian_matcher.cpp: DINO's matching cost (focal class cost, L1 and -GIoU on boxes) and the
// per-image assignment (see hungarian_matcher.h).
#include "models/det/hungarian_matcher.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/cpu/parallel.h"
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

struct Corners {
  double x1, y1, x2, y2;
};

Corners corners(const double* cxcywh) {
  return {cxcywh[0] - 0.5 * cxcywh[2], cxcywh[1] - 0.5 * cxcywh[3], cxcywh[0] + 0.5 * cxcywh[2],
          cxcywh[1] + 0.5 * cxcywh[3]};
}

// The GIoU of two boxes, term by term as box_ops.h's generalized_box_iou (torchvision's).
double giou(const Corners& a, const Corners& b) {
  const double area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  const double iw = std::max(std::min(a.x2, b.x2) - std::max(a.x1, b.x1), 0.0);
  const double ih = std::max(std::min(a.y2, b.y2) - std::max(a.y1, b.y1), 0.0);
  const double inter = iw * ih;
  const double uni = area_a + area_b - inter;
  const double cw = std::max(std::max(a.x2, b.x2) - std::min(a.x1, b.x1), 0.0);
  const double ch = std::max(std::max(a.y2, b.y2) - std::min(a.y1, b.y1), 0.0);
  const double area_c = cw * ch;
  return inter / uni - (area_c - uni) / area_c;
}

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
  Tensor out = empty({Q, T}, DType::f64);
  if (T == 0 || Q == 0) return out;

  // Plain loops on host copies: no graph is wanted, and a few thousand (query, target) pairs per
  // image are far cheaper this way than through ~40 tensor ops (DINO matches every decoder layer).
  const std::vector<double> lg = logits.to_double_vector(), pb = boxes.to_double_vector();
  const std::vector<double> tb = target.boxes.to_double_vector(), lab = target.labels.to_double_vector();
  std::vector<int64_t> labels(lab.begin(), lab.end());

  // The focal class cost of each query for each class some target has: the focal loss of
  // calling the query positive minus that of calling it negative. The 1e-8 keeps log finite at
  // p = 0 or 1 (as Deformable DETR / DINO write it).
  std::vector<char> wanted(static_cast<size_t>(K), 0);
  for (int64_t k : labels) wanted[size_t(k)] = 1;
  std::vector<double> class_cost(static_cast<size_t>(Q * K), 0.0);
  const double a = c.focal_alpha, g = c.focal_gamma;
  auto pow_g = [g](double x) { return g == 2.0 ? x * x : std::pow(x, g); };  // DINO's gamma 2: a square
  cpu::parallel_for(Q, 64, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      for (int64_t k = 0; k < K; ++k) {
        if (!wanted[size_t(k)]) continue;
        const double p = 1.0 / (1.0 + std::exp(-lg[size_t(q * K + k)]));
        const double neg = (1 - a) * pow_g(p) * -std::log(1 - p + 1e-8);
        const double pos = a * pow_g(1 - p) * -std::log(p + 1e-8);
        class_cost[size_t(q * K + k)] = pos - neg;
      }
  });

  double* o = out.data<double>();
  cpu::parallel_for(Q, 16, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const double* bq = &pb[size_t(q * 4)];
      const Corners pc = corners(bq);
      for (int64_t t = 0; t < T; ++t) {
        const double* bt = &tb[size_t(t * 4)];
        const double l1 = std::abs(bq[0] - bt[0]) + std::abs(bq[1] - bt[1]) + std::abs(bq[2] - bt[2]) +
                          std::abs(bq[3] - bt[3]);  // torch.cdist(p = 1) in cxcywh
        const double cost_giou = -giou(pc, corners(bt));
        o[q * T + t] = c.cost_bbox * l1 + c.cost_class * class_cost[size_t(q * K + labels[size_t(t)])] +
                       c.cost_giou * cost_giou;
      }
    }
  });
  return out;
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
    try {
      const Assignment a = linear_sum_assignment(cost.to_vector<double>(), Q, cost.size(1));
      out[size_t(b)] = {a.row_ind, a.col_ind};
    } catch (const std::invalid_argument& e) {  // NaN predictions (a diverged model) end up here
      throw std::invalid_argument("hungarian_match: image " + std::to_string(b) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace rv::models::det
