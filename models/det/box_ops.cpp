// box_ops.cpp: box format conversions, area, IoU and GIoU composed from engine ops (see box_ops.h).
#include "models/det/box_ops.h"

#include <array>
#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/shape.h"

namespace rv::models::det {

namespace {

void check_boxes(const Tensor& b, const char* op, const char* arg, bool pairwise) {
  if (!is_floating(b.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected float " + arg + ", got " + dtype_name(b.dtype()));
  if (pairwise ? b.dim() != 2 || b.size(1) != 4 : b.dim() < 1 || b.size(-1) != 4)
    throw std::invalid_argument(std::string(op) + ": expected " + arg + (pairwise ? " of shape (N, 4)" : " of shape (..., 4)") +
                                ", got " + shape_str(b.shape()));
}

// The four coordinates of (..., 4) boxes as (...) views.
std::array<Tensor, 4> fields(const Tensor& b) { return {b.select(-1, 0), b.select(-1, 1), b.select(-1, 2), b.select(-1, 3)}; }

struct PairTerms {
  Tensor iou;    // intersection / union
  Tensor union_; // area1 + area2 - intersection
};

// IoU and union of xyxy boxes given as coordinate tensors that broadcast against each other:
// (N, 1) with (M) for all pairs, equal shapes for matched pairs. Follows torchvision's
// _box_inter_union term by term.
PairTerms iou_terms(const std::array<Tensor, 4>& a, const std::array<Tensor, 4>& b) {
  const Tensor area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const Tensor area_b = (b[2] - b[0]) * (b[3] - b[1]);
  // Intersection: the overlap of the two intervals on each axis, 0 when they do not overlap.
  const Tensor iw = clamp(minimum(a[2], b[2]) - maximum(a[0], b[0]), 0.0, std::nullopt);
  const Tensor ih = clamp(minimum(a[3], b[3]) - maximum(a[1], b[1]), 0.0, std::nullopt);
  const Tensor inter = iw * ih;
  const Tensor uni = area_a + area_b - inter;
  return {inter / uni, uni};
}

// GIoU from the same coordinate tensors: IoU minus the share of the enclosing box C that the
// union leaves empty.
Tensor giou_terms(const std::array<Tensor, 4>& a, const std::array<Tensor, 4>& b) {
  const PairTerms t = iou_terms(a, b);
  const Tensor cw = clamp(maximum(a[2], b[2]) - minimum(a[0], b[0]), 0.0, std::nullopt);
  const Tensor ch = clamp(maximum(a[3], b[3]) - minimum(a[1], b[1]), 0.0, std::nullopt);
  const Tensor area_c = cw * ch;
  return t.iou - (area_c - t.union_) / area_c;
}

// boxes1's coordinates as (N, 1), so that with boxes2's (M) they broadcast to (N, M).
std::array<Tensor, 4> column_fields(const Tensor& b) {
  std::array<Tensor, 4> f = fields(b);
  for (Tensor& t : f) t = t.unsqueeze(1);
  return f;
}

}  // namespace

Tensor box_cxcywh_to_xyxy(const Tensor& boxes) {
  check_boxes(boxes, "box_cxcywh_to_xyxy", "boxes", false);
  const auto [cx, cy, w, h] = fields(boxes);
  const Tensor hw = w * 0.5, hh = h * 0.5;
  return stack({cx - hw, cy - hh, cx + hw, cy + hh}, -1);
}

Tensor box_xyxy_to_cxcywh(const Tensor& boxes) {
  check_boxes(boxes, "box_xyxy_to_cxcywh", "boxes", false);
  const auto [x1, y1, x2, y2] = fields(boxes);
  return stack({(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1}, -1);
}

Tensor box_area(const Tensor& boxes) {
  check_boxes(boxes, "box_area", "boxes", false);
  const auto [x1, y1, x2, y2] = fields(boxes);
  return (x2 - x1) * (y2 - y1);
}

Tensor box_iou(const Tensor& boxes1, const Tensor& boxes2) {
  check_boxes(boxes1, "box_iou", "boxes1", true);
  check_boxes(boxes2, "box_iou", "boxes2", true);
  return iou_terms(column_fields(boxes1), fields(boxes2)).iou;  // (N, M)
}

Tensor generalized_box_iou(const Tensor& boxes1, const Tensor& boxes2) {
  check_boxes(boxes1, "generalized_box_iou", "boxes1", true);
  check_boxes(boxes2, "generalized_box_iou", "boxes2", true);
  return giou_terms(column_fields(boxes1), fields(boxes2));  // (N, M)
}

Tensor elementwise_generalized_box_iou(const Tensor& boxes1, const Tensor& boxes2) {
  check_boxes(boxes1, "elementwise_generalized_box_iou", "boxes1", false);
  check_boxes(boxes2, "elementwise_generalized_box_iou", "boxes2", false);
  if (boxes1.shape() != boxes2.shape())
    throw std::invalid_argument("elementwise_generalized_box_iou: expected boxes1 and boxes2 of the same shape, got " +
                                shape_str(boxes1.shape()) + " and " + shape_str(boxes2.shape()));
  return giou_terms(fields(boxes1), fields(boxes2));
}

}  // namespace rv::models::det
