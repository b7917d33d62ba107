// det_losses.cpp: DINO's focal, L1 and GIoU losses and the gathering of matched pairs (see det_losses.h).
#include "models/det/det_losses.h"

#include <stdexcept>
#include <string>

#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "models/det/box_ops.h"

namespace rv::models::det {

namespace {

void check_num_boxes(double num_boxes, const char* op) {
  if (!(num_boxes > 0.0))
    throw std::invalid_argument(std::string(op) + ": expected num_boxes > 0 (DINO clamps it to >= 1), got " +
                                std::to_string(num_boxes));
}

void check_pairs(const Tensor& pred, const Tensor& target, const char* op) {
  if (pred.dim() != 2 || pred.size(1) != 4 || target.shape() != pred.shape())
    throw std::invalid_argument(std::string(op) + ": expected pred_boxes and target_boxes of the same shape (M, 4), got " +
                                shape_str(pred.shape()) + " and " + shape_str(target.shape()));
}

// The pairs of image b, checked against the image's Q queries and T targets.
void check_match(const MatchIndices& m, int64_t Q, int64_t T, size_t b, const char* op) {
  if (m.query.size() != m.target.size())
    throw std::invalid_argument(std::string(op) + ": image " + std::to_string(b) + " has " +
                                std::to_string(m.query.size()) + " query indices but " +
                                std::to_string(m.target.size()) + " target indices");
  for (size_t k = 0; k < m.query.size(); ++k) {
    if (m.query[k] < 0 || m.query[k] >= Q)
      throw std::out_of_range(std::string(op) + ": image " + std::to_string(b) + ": query index " +
                              std::to_string(m.query[k]) + " is outside [0, " + std::to_string(Q) + ")");
    if (m.target[k] < 0 || m.target[k] >= T)
      throw std::out_of_range(std::string(op) + ": image " + std::to_string(b) + ": target index " +
                              std::to_string(m.target[k]) + " is outside [0, " + std::to_string(T) + ")");
  }
}

}  // namespace

Tensor sigmoid_focal_loss(const Tensor& inputs, const Tensor& targets, double alpha, double gamma, Reduction reduction) {
  if (inputs.shape() != targets.shape())
    throw std::invalid_argument("sigmoid_focal_loss: expected inputs and targets of the same shape, got " +
                                shape_str(inputs.shape()) + " and " + shape_str(targets.shape()));
  const Tensor p = sigmoid(inputs);
  const Tensor ce = binary_cross_entropy_with_logits(inputs, targets, Tensor(), Tensor(), Reduction::none);
  // p_t: the probability given to the true answer. (1 - p_t)^gamma shrinks the loss of the
  // many easy negatives (background queries), so the few matched queries are not drowned.
  const Tensor p_t = p * targets + (1.0 - p) * (1.0 - targets);
  Tensor loss = ce * pow(1.0 - p_t, gamma);
  if (alpha >= 0) loss = (alpha * targets + (1.0 - alpha) * (1.0 - targets)) * loss;
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
  }
  throw std::invalid_argument("sigmoid_focal_loss: unknown reduction");
}

Tensor focal_class_loss(const Tensor& logits, const Tensor& targets, double num_boxes, double alpha, double gamma) {
  check_num_boxes(num_boxes, "focal_class_loss");
  if (logits.dim() != 3)
    throw std::invalid_argument("focal_class_loss: expected logits of shape (B, Q, K), got " + shape_str(logits.shape()));
  const double Q = double(logits.size(1));
  // Deformable DETR's .mean(1).sum() / num_boxes, then DINO's * Q: the sum over every query and
  // class divided by num_boxes, written as they write it so the rounding matches.
  const Tensor per = sigmoid_focal_loss(logits, targets, alpha, gamma, Reduction::none);  // (B, Q, K)
  return mul(div(sum(mean(per, {1})), scalar_tensor(num_boxes, per.dtype())), Q);
}

Tensor l1_box_loss(const Tensor& pred_boxes, const Tensor& target_boxes, double num_boxes) {
  check_num_boxes(num_boxes, "l1_box_loss");
  check_pairs(pred_boxes, target_boxes, "l1_box_loss");
  return div(l1_loss(pred_boxes, target_boxes, Reduction::sum), scalar_tensor(num_boxes, pred_boxes.dtype()));
}

Tensor giou_box_loss(const Tensor& pred_boxes, const Tensor& target_boxes, double num_boxes) {
  check_num_boxes(num_boxes, "giou_box_loss");
  check_pairs(pred_boxes, target_boxes, "giou_box_loss");
  const Tensor giou = elementwise_generalized_box_iou(box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(target_boxes));
  return div(sum(1.0 - giou), scalar_tensor(num_boxes, pred_boxes.dtype()));  // (M) -> ()
}

Tensor focal_targets(const std::vector<MatchIndices>& indices, const std::vector<DetTarget>& targets, int64_t Q,
                     int64_t K, DType dtype) {
  if (indices.size() != targets.size())
    throw std::invalid_argument("focal_targets: expected one MatchIndices per target image, got " +
                                std::to_string(indices.size()) + " and " + std::to_string(targets.size()));
  const int64_t B = int64_t(targets.size());
  std::vector<double> onehot(static_cast<size_t>(B * Q * K), 0.0);
  for (size_t b = 0; b < targets.size(); ++b) {
    const std::vector<double> labels = targets[b].labels.to_double_vector();
    check_match(indices[b], Q, int64_t(labels.size()), b, "focal_targets");
    for (size_t k = 0; k < indices[b].query.size(); ++k) {
      const double label = labels[size_t(indices[b].target[k])];
      if (label < 0 || label >= double(K))
        throw std::out_of_range("focal_targets: image " + std::to_string(b) + ": label " +
                                std::to_string(int64_t(label)) + " is outside [0, " + std::to_string(K) + ")");
      onehot[size_t((int64_t(b) * Q + indices[b].query[k]) * K + int64_t(label))] = 1.0;
    }
  }
  return from_vector(onehot, {B, Q, K}, dtype);
}

Tensor matched_predictions(const Tensor& pred_boxes, const std::vector<MatchIndices>& indices) {
  if (pred_boxes.dim() != 3 || pred_boxes.size(0) != int64_t(indices.size()))
    throw std::invalid_argument("matched_predictions: expected pred_boxes of shape (B, Q, D) with B = " +
                                std::to_string(indices.size()) + ", got " + shape_str(pred_boxes.shape()));
  const int64_t B = pred_boxes.size(0), Q = pred_boxes.size(1);
  std::vector<int64_t> rows;  // positions in the (B * Q) flattened queries
  for (size_t b = 0; b < indices.size(); ++b) {
    check_match(indices[b], Q, INT64_MAX, b, "matched_predictions");
    for (int64_t q : indices[b].query) rows.push_back(int64_t(b) * Q + q);
  }
  const Tensor flat = pred_boxes.reshape({B * Q, pred_boxes.size(2)});
  return index_select(flat, 0, from_vector(rows, {int64_t(rows.size())}));  // (M, D)
}

Tensor matched_targets(const std::vector<DetTarget>& targets, const std::vector<MatchIndices>& indices, DType dtype) {
  if (indices.size() != targets.size())
    throw std::invalid_argument("matched_targets: expected one MatchIndices per target image, got " +
                                std::to_string(indices.size()) + " and " + std::to_string(targets.size()));
  std::vector<double> out;
  for (size_t b = 0; b < targets.size(); ++b) {
    const Tensor& boxes = targets[b].boxes;
    if (boxes.dim() != 2 || boxes.size(1) != 4)
      throw std::invalid_argument("matched_targets: image " + std::to_string(b) + ": expected boxes (T, 4), got " +
                                  shape_str(boxes.shape()));
    const std::vector<double> v = boxes.to_double_vector();
    check_match(indices[b], INT64_MAX, boxes.size(0), b, "matched_targets");
    for (int64_t t : indices[b].target) out.insert(out.end(), v.begin() + t * 4, v.begin() + t * 4 + 4);
  }
  return from_vector(out, {int64_t(out.size() / 4), 4}, dtype);
}

}  // namespace rv::models::det
