// Gradients of the detection box ops and losses (models/det/box_ops.h, det_losses.h) w.r.t.
// every differentiable input, against f64 central finite differences. Boxes are random and
// valid, away from the kinks (equal coordinates, touching edges) where the derivative jumps.
#include <array>
#include <vector>

#include "models/det/box_ops.h"
#include "models/det/det_losses.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

using Inputs = std::vector<Tensor>;

// n valid xyxy boxes as an f64 leaf: corner in [0, 0.7), size in [0.05, 0.5).
Tensor xyxy_leaf(int64_t n, uint64_t seed) {
  const std::vector<double> u = test::test_tensor({n, 4}, seed, DType::f64, 0.0, 1.0).to_double_vector();
  std::vector<double> v(u.size());
  for (size_t i = 0; i < u.size(); i += 4) {
    v[i] = 0.7 * u[i];
    v[i + 1] = 0.7 * u[i + 1];
    v[i + 2] = v[i] + 0.05 + 0.45 * u[i + 2];
    v[i + 3] = v[i + 1] + 0.05 + 0.45 * u[i + 3];
  }
  return from_vector(v, {n, 4}, DType::f64).requires_grad_(true);
}

}  // namespace

TEST_CASE("gradcheck box format conversions and area") {
  Tensor c = test::grad_input({2, 3, 4}, 1, 0.1, 0.9);
  RV_GRADCHECK([](const Inputs& in) { return box_cxcywh_to_xyxy(in[0]); }, Inputs{c});
  RV_GRADCHECK([](const Inputs& in) { return box_xyxy_to_cxcywh(in[0]); }, Inputs{c});
  Tensor x = xyxy_leaf(5, 2);
  RV_GRADCHECK([](const Inputs& in) { return box_area(in[0]); }, Inputs{x});
}

TEST_CASE("gradcheck box_iou and generalized_box_iou in both inputs") {
  Tensor a = xyxy_leaf(6, 3), b = xyxy_leaf(5, 4);
  RV_GRADCHECK([](const Inputs& in) { return box_iou(in[0], in[1]); }, (Inputs{a, b}));
  RV_GRADCHECK([](const Inputs& in) { return generalized_box_iou(in[0], in[1]); }, (Inputs{a, b}));
  Tensor b6 = xyxy_leaf(6, 5);
  RV_GRADCHECK([](const Inputs& in) { return elementwise_generalized_box_iou(in[0], in[1]); }, (Inputs{a, b6}));
}

TEST_CASE("gradcheck sigmoid_focal_loss in inputs and targets, every reduction, alpha on and off") {
  Tensor x = test::grad_input({2, 4, 3}, 6, -4.0, 4.0);
  Tensor t = test::grad_input({2, 4, 3}, 7, 0.0, 1.0);
  for (Reduction red : {Reduction::none, Reduction::sum, Reduction::mean}) {
    CAPTURE(reduction_name(red));
    RV_GRADCHECK([&](const Inputs& in) { return sigmoid_focal_loss(in[0], in[1], 0.25, 2.0, red); }, (Inputs{x, t}));
    RV_GRADCHECK([&](const Inputs& in) { return sigmoid_focal_loss(in[0], in[1], -1.0, 1.5, red); }, (Inputs{x, t}));
  }
}

TEST_CASE("gradcheck DINO's focal class, L1 and GIoU losses") {
  Tensor logits = test::grad_input({2, 6, 3}, 8, -3.0, 3.0);
  Tensor onehot = zeros({2, 6, 3}, DType::f64);
  for (auto [b, q, k] : {std::array<int64_t, 3>{0, 1, 2}, {0, 4, 0}, {1, 5, 1}}) onehot.select(0, b).select(0, q).select(0, k).fill_(1.0);
  RV_GRADCHECK([&](const Inputs& in) { return focal_class_loss(in[0], onehot, 3.0); }, Inputs{logits});
  Tensor pred = test::grad_input({5, 4}, 9, 0.2, 0.6), tgt = test::grad_input({5, 4}, 10, 0.2, 0.6);
  RV_GRADCHECK([](const Inputs& in) { return l1_box_loss(in[0], in[1], 4.0); }, (Inputs{pred, tgt}));
  RV_GRADCHECK([](const Inputs& in) { return giou_box_loss(in[0], in[1], 4.0); }, (Inputs{pred, tgt}));
}
