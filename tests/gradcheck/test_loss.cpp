// Gradients of every loss w.r.t. every differentiable input (logits, soft targets, BCE input and
// target, regression input and target) against f64 central finite differences.
#include <vector>

#include "engine/ops/loss.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

using Inputs = std::vector<Tensor>;

Tensor indices(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s); }

}  // namespace

TEST_CASE("gradcheck cross_entropy with class indices: weights, ignore_index, smoothing, every reduction") {
  Tensor x = test::grad_input({4, 5}, 1, -3.0, 3.0);
  Tensor y = indices({3, -100, 0, 4}, {4});
  Tensor w = test::test_tensor({5}, 2, DType::f64, 0.2, 2.0);
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(reduction_name(red));
    RV_GRADCHECK([&](const Inputs& in) { return cross_entropy(in[0], y, {.reduction = red}); }, Inputs{x});
    RV_GRADCHECK([&](const Inputs& in) {
      return cross_entropy(in[0], y, {.weight = w, .label_smoothing = 0.15, .reduction = red});
    }, Inputs{x});
  }
}

TEST_CASE("gradcheck cross_entropy on (B, K, H, W) logits") {
  Tensor x = test::grad_input({2, 4, 2, 3}, 3, -2.0, 2.0);
  Tensor y = indices({0, 1, 255, 3, 2, 2, 1, 255, 0, 3, 3, 1}, {2, 2, 3});
  Tensor w = test::test_tensor({4}, 4, DType::f64, 0.2, 2.0);
  for (Reduction red : {Reduction::mean, Reduction::none}) {
    RV_GRADCHECK([&](const Inputs& in) {
      return cross_entropy(in[0], y, {.weight = w, .ignore_index = 255, .label_smoothing = 0.1, .reduction = red});
    }, Inputs{x});
  }
}

TEST_CASE("gradcheck cross_entropy with soft targets: logits and targets") {
  Tensor x = test::grad_input({3, 4, 2}, 5, -2.0, 2.0);
  Tensor t = test::grad_input({3, 4, 2}, 6, 0.0, 1.0);
  Tensor w = test::test_tensor({4}, 7, DType::f64, 0.2, 2.0);
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(reduction_name(red));
    RV_GRADCHECK([&](const Inputs& in) {
      return cross_entropy(in[0], in[1], {.weight = w, .label_smoothing = 0.2, .reduction = red});
    }, (Inputs{x, t}));
  }
  Tensor x2 = test::grad_input({5, 3}, 8), t2 = test::grad_input({5, 3}, 9, 0.0, 1.0);
  RV_GRADCHECK([&](const Inputs& in) { return cross_entropy(in[0], in[1]); }, (Inputs{x2, t2}));
}

TEST_CASE("gradcheck cross_entropy on unbatched logits") {
  Tensor x = test::grad_input({6}, 10);
  Tensor y = indices({2}, {});
  RV_GRADCHECK([&](const Inputs& in) { return cross_entropy(in[0], y, {.label_smoothing = 0.1}); }, Inputs{x});
  Tensor t = test::grad_input({6}, 11, 0.0, 1.0);
  RV_GRADCHECK([&](const Inputs& in) {
    return cross_entropy(in[0], in[1], {.reduction = Reduction::none});
  }, (Inputs{x, t}));
}

TEST_CASE("gradcheck binary_cross_entropy_with_logits: input and target, with weight and pos_weight") {
  Tensor x = test::grad_input({3, 4}, 20, -4.0, 4.0);
  Tensor t = test::grad_input({3, 4}, 21, 0.0, 1.0);
  Tensor w = test::test_tensor({3, 1}, 22, DType::f64, 0.0, 2.0);
  Tensor pw = test::test_tensor({4}, 23, DType::f64, 0.5, 3.0);
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(reduction_name(red));
    RV_GRADCHECK([&](const Inputs& in) {
      return binary_cross_entropy_with_logits(in[0], in[1], {}, {}, red);
    }, (Inputs{x, t}));
    RV_GRADCHECK([&](const Inputs& in) {
      return binary_cross_entropy_with_logits(in[0], in[1], w, pw, red);
    }, (Inputs{x, t}));
  }
}

TEST_CASE("gradcheck mse, l1 and smooth_l1: input and target, broadcast, every reduction") {
  Tensor x = test::grad_input({3, 4}, 30, -2.0, 2.0);
  Tensor t = test::grad_input({4}, 31, -2.0, 2.0);  // broadcast over the rows
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(reduction_name(red));
    RV_GRADCHECK([&](const Inputs& in) { return mse_loss(in[0], in[1], red); }, (Inputs{x, t}));
    RV_GRADCHECK([&](const Inputs& in) { return l1_loss(in[0], in[1], red); }, (Inputs{x, t}));
    for (double beta : {0.0, 0.5, 1.5})
      RV_GRADCHECK([&](const Inputs& in) { return smooth_l1_loss(in[0], in[1], red, beta); }, (Inputs{x, t}));
  }
}

TEST_CASE("gradcheck cross_entropy with many classes (small panels)") {
  Tensor x = test::grad_input({2, 1200}, 40, -3.0, 3.0);  // 6 rows per panel buffer
  Tensor y = indices({17, 1100}, {2});
  RV_GRADCHECK([&](const Inputs& in) { return cross_entropy(in[0], y, {.label_smoothing = 0.1}); }, Inputs{x});
  Tensor t = test::grad_input({2, 1200}, 41, 0.0, 2.0 / 1200);  // rows sum to about 1, as probabilities
  RV_GRADCHECK([&](const Inputs& in) {
    return cross_entropy(in[0], in[1], {.label_smoothing = 0.1, .reduction = Reduction::sum});
  }, (Inputs{x, t}));
}
