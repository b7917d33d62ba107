// DINO's losses and Hungarian matcher (models/det/det_losses.h, hungarian_matcher.h) against
// plain reference loops: the focal loss per element and reduced (non-contiguous, empty), the
// DINO normalisation, the box losses, the gathering of matched pairs (with gradients), the
// matching cost, the matching itself against brute force, and the error messages.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/reduce.h"
#include "models/det/box_ops.h"
#include "models/det/det_losses.h"
#include "models/det/hungarian_matcher.h"
#include "models/det/linear_assignment.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double ref_focal(double x, double t, double alpha, double gamma) {
  const double p = sigm(x);
  const double ce = std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x)));
  const double p_t = p * t + (1 - p) * (1 - t);
  double loss = ce * std::pow(1 - p_t, gamma);
  if (alpha >= 0) loss *= alpha * t + (1 - alpha) * (1 - t);
  return loss;
}

double ref_giou_cxcywh(const double* a, const double* b) {
  const double ax1 = a[0] - a[2] / 2, ay1 = a[1] - a[3] / 2, ax2 = a[0] + a[2] / 2, ay2 = a[1] + a[3] / 2;
  const double bx1 = b[0] - b[2] / 2, by1 = b[1] - b[3] / 2, bx2 = b[0] + b[2] / 2, by2 = b[1] + b[3] / 2;
  const double iw = std::max(0.0, std::min(ax2, bx2) - std::max(ax1, bx1));
  const double ih = std::max(0.0, std::min(ay2, by2) - std::max(ay1, by1));
  const double uni = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - iw * ih;
  const double c = (std::max(ax2, bx2) - std::min(ax1, bx1)) * (std::max(ay2, by2) - std::min(ay1, by1));
  return iw * ih / uni - (c - uni) / c;
}

// DINO's matching cost of one (query, target) pair, written out.
double ref_cost(const double* logit_row, const double* box, int64_t label, const double* tbox) {
  const double p = sigm(logit_row[label]);
  const double neg = 0.75 * p * p * -std::log(1 - p + 1e-8);
  const double pos = 0.25 * (1 - p) * (1 - p) * -std::log(p + 1e-8);
  double l1 = 0;
  for (int i = 0; i < 4; ++i) l1 += std::abs(box[i] - tbox[i]);
  return 5.0 * l1 + 2.0 * (pos - neg) - 2.0 * ref_giou_cxcywh(box, tbox);
}

DetTarget make_target(const std::vector<int64_t>& labels, uint64_t seed) {
  const int64_t T = int64_t(labels.size());
  Tensor c = test::test_tensor({T, 2}, seed, DType::f64, 0.2, 0.8);
  Tensor s = test::test_tensor({T, 2}, seed + 1, DType::f64, 0.05, 0.4);
  std::vector<double> v;
  const std::vector<double> cv = c.to_double_vector(), sv = s.to_double_vector();
  for (int64_t t = 0; t < T; ++t) v.insert(v.end(), {cv[size_t(2 * t)], cv[size_t(2 * t + 1)], sv[size_t(2 * t)], sv[size_t(2 * t + 1)]});
  return {from_vector(labels, {T}), from_vector(v, {T, 4}, DType::f64)};
}

}  // namespace

TEST_CASE("sigmoid_focal_loss: reference loop per element, reductions, non-contiguous, empty") {
  const Tensor x = test::test_tensor({3, 4, 5}, 1, DType::f64, -8.0, 8.0);
  const Tensor t = test::test_tensor({3, 4, 5}, 2, DType::f64, 0.0, 1.0);
  const std::vector<double> xv = x.to_double_vector(), tv = t.to_double_vector();
  for (auto [alpha, gamma] : {std::pair{0.25, 2.0}, {-1.0, 1.5}, {0.5, 0.0}}) {
    CAPTURE(alpha);
    CAPTURE(gamma);
    const std::vector<double> got = sigmoid_focal_loss(x, t, alpha, gamma).to_double_vector();
    double total = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      const double want = ref_focal(xv[i], tv[i], alpha, gamma);
      CHECK(std::abs(got[i] - want) <= 1e-13 + 1e-12 * std::abs(want));
      total += want;
    }
    CHECK(sigmoid_focal_loss(x, t, alpha, gamma, Reduction::sum).item() == doctest::Approx(total).epsilon(1e-12));
    CHECK(sigmoid_focal_loss(x, t, alpha, gamma, Reduction::mean).item() ==
          doctest::Approx(total / double(xv.size())).epsilon(1e-12));
  }
  const Tensor xn = test::test_noncontiguous({4, 5}, 3, DType::f32), tn = test::test_noncontiguous({4, 5}, 4, DType::f32);
  RV_EXPECT_CLOSE(sigmoid_focal_loss(xn, tn), sigmoid_focal_loss(xn.contiguous(), tn.contiguous()), 0.0, 0.0);
  CHECK(sigmoid_focal_loss(zeros({0, 3}), zeros({0, 3})).shape() == Shape{0, 3});
  CHECK(sigmoid_focal_loss(zeros({0, 3}), zeros({0, 3}), 0.25, 2.0, Reduction::sum).item() == 0.0);
  CHECK_THROWS_WITH_AS(sigmoid_focal_loss(zeros({2, 3}), zeros({3, 2})),
                       "sigmoid_focal_loss: expected inputs and targets of the same shape, got [2, 3] and [3, 2]",
                       std::invalid_argument);
}

TEST_CASE("focal_class_loss is the focal sum over queries and classes divided by num_boxes") {
  const Tensor x = test::test_tensor({2, 7, 3}, 5, DType::f64, -5.0, 3.0);
  Tensor t = zeros({2, 7, 3}, DType::f64);
  t.select(0, 0).select(0, 2).select(0, 1).fill_(1.0);
  t.select(0, 1).select(0, 6).select(0, 0).fill_(1.0);
  const std::vector<double> xv = x.to_double_vector(), tv = t.to_double_vector();
  double total = 0;
  for (size_t i = 0; i < xv.size(); ++i) total += ref_focal(xv[i], tv[i], 0.25, 2.0);
  CHECK(focal_class_loss(x, t, 2.0).item() == doctest::Approx(total / 2.0).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(focal_class_loss(x, t, 0.0), doctest::Contains("focal_class_loss: expected num_boxes > 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(focal_class_loss(zeros({7, 3}), zeros({7, 3}), 1.0),
                       "focal_class_loss: expected logits of shape (B, Q, K), got [7, 3]", std::invalid_argument);
}

TEST_CASE("l1_box_loss and giou_box_loss: reference loops, no pairs, errors") {
  const Tensor p = test::test_tensor({6, 4}, 6, DType::f64, 0.1, 0.6), g = test::test_tensor({6, 4}, 7, DType::f64, 0.1, 0.6);
  const std::vector<double> pv = p.to_double_vector(), gv = g.to_double_vector();
  double l1 = 0, giou = 0;
  for (size_t i = 0; i < pv.size(); ++i) l1 += std::abs(pv[i] - gv[i]);
  for (size_t k = 0; k < 6; ++k) giou += 1 - ref_giou_cxcywh(&pv[4 * k], &gv[4 * k]);
  CHECK(l1_box_loss(p, g, 3.0).item() == doctest::Approx(l1 / 3.0).epsilon(1e-13));
  CHECK(giou_box_loss(p, g, 3.0).item() == doctest::Approx(giou / 3.0).epsilon(1e-13));
  CHECK(l1_box_loss(zeros({0, 4}), zeros({0, 4}), 1.0).item() == 0.0);  // a batch without objects
  CHECK(giou_box_loss(zeros({0, 4}), zeros({0, 4}), 1.0).item() == 0.0);
  CHECK_THROWS_WITH_AS(giou_box_loss(zeros({2, 4}), zeros({3, 4}), 1.0),
                       "giou_box_loss: expected pred_boxes and target_boxes of the same shape (M, 4), got [2, 4] and [3, 4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(l1_box_loss(zeros({2, 4}), zeros({2, 4}), -1.0), doctest::Contains("expected num_boxes > 0"),
                       std::invalid_argument);
}

TEST_CASE("focal_targets, matched_predictions and matched_targets gather the matched pairs") {
  const std::vector<DetTarget> targets{make_target({2, 0}, 10), make_target({}, 12), make_target({1}, 14)};
  const std::vector<MatchIndices> idx{{{1, 3}, {1, 0}}, {{}, {}}, {{0}, {0}}};
  const Tensor onehot = focal_targets(idx, targets, 4, 3, DType::f32);
  REQUIRE(onehot.shape() == Shape{3, 4, 3});
  const std::vector<double> ov = onehot.to_double_vector();
  std::vector<double> want(ov.size(), 0.0);
  want[(0 * 4 + 1) * 3 + 0] = 1;  // image 0: query 1 <- target 1 (label 0)
  want[(0 * 4 + 3) * 3 + 2] = 1;  // image 0: query 3 <- target 0 (label 2)
  want[(2 * 4 + 0) * 3 + 1] = 1;  // image 2: query 0 <- target 0 (label 1)
  CHECK(ov == want);

  Tensor pred = test::test_tensor({3, 4, 4}, 16, DType::f64, 0.1, 0.9).requires_grad_(true);
  const Tensor m = matched_predictions(pred, idx);
  REQUIRE(m.shape() == Shape{3, 4});
  const std::vector<double> pv = pred.to_double_vector(), mv = m.to_double_vector();
  const int64_t rows[3] = {0 * 4 + 1, 0 * 4 + 3, 2 * 4 + 0};
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 4; ++i) CHECK(mv[size_t(r * 4 + i)] == pv[size_t(rows[r] * 4 + i)]);
  sum(m).backward();
  const std::vector<double> grad = pred.grad().to_double_vector();
  for (int64_t q = 0; q < 12; ++q) {
    const bool matched = q == rows[0] || q == rows[1] || q == rows[2];
    for (int i = 0; i < 4; ++i) CHECK(grad[size_t(q * 4 + i)] == (matched ? 1.0 : 0.0));
  }
  const Tensor tm = matched_targets(targets, idx, DType::f64);
  REQUIRE(tm.shape() == Shape{3, 4});
  const std::vector<double> t0 = targets[0].boxes.to_double_vector(), t2 = targets[2].boxes.to_double_vector(),
                            tv = tm.to_double_vector();
  for (int i = 0; i < 4; ++i) {
    CHECK(tv[size_t(i)] == t0[size_t(4 + i)]);
    CHECK(tv[size_t(4 + i)] == t0[size_t(i)]);
    CHECK(tv[size_t(8 + i)] == t2[size_t(i)]);
  }
  const std::vector<MatchIndices> none{{}, {}, {}};
  CHECK(matched_predictions(pred, none).shape() == Shape{0, 4});
  CHECK(matched_targets(targets, none, DType::f32).shape() == Shape{0, 4});
  CHECK_THROWS_WITH_AS(focal_targets({{{4}, {0}}, {}, {}}, targets, 4, 3, DType::f32),
                       "focal_targets: image 0: query index 4 is outside [0, 4)", std::out_of_range);
  CHECK_THROWS_WITH_AS(matched_targets(targets, {{{0}, {2}}, {}, {}}, DType::f32),
                       doctest::Contains("matched_targets: image 0: target index 2 is outside [0, 2)"), std::out_of_range);
}

TEST_CASE("matching_cost: reference loop; no targets gives a (Q, 0) matrix") {
  const Tensor logits = test::test_tensor({6, 4}, 20, DType::f64, -4.0, 4.0);
  const Tensor boxes = test::test_tensor({6, 4}, 21, DType::f64, 0.1, 0.6);
  const DetTarget tgt = make_target({3, 0, 3}, 22);
  const Tensor c = matching_cost(logits, boxes, tgt);
  REQUIRE(c.shape() == Shape{6, 3});
  CHECK(c.dtype() == DType::f64);
  const std::vector<double> lv = logits.to_double_vector(), bv = boxes.to_double_vector(),
                            tv = tgt.boxes.to_double_vector(), cv = c.to_double_vector();
  const int64_t labels[3] = {3, 0, 3};
  for (size_t q = 0; q < 6; ++q)
    for (size_t t = 0; t < 3; ++t) {
      const double want = ref_cost(&lv[q * 4], &bv[q * 4], labels[t], &tv[t * 4]);
      CHECK(std::abs(cv[q * 3 + t] - want) <= 1e-12);
    }
  CHECK(matching_cost(logits, boxes, make_target({}, 23)).shape() == Shape{6, 0});
  // The same costs from f32 inputs (computed in f64 from the rounded values).
  RV_EXPECT_CLOSE(matching_cost(logits.to(DType::f32), boxes.to(DType::f32), tgt), c, 1e-5, 1e-5);
}

TEST_CASE("hungarian_match: the least total cost per image against brute force, Q >= T and Q < T") {
  for (auto [Q, T] : {std::pair<int64_t, int64_t>{5, 3}, {6, 6}, {3, 4}, {4, 0}}) {
    CAPTURE(Q);
    CAPTURE(T);
    const Tensor logits = test::test_tensor({2, Q, 3}, uint64_t(30 + Q), DType::f64, -3.0, 3.0);
    const Tensor boxes = test::test_tensor({2, Q, 4}, uint64_t(40 + Q), DType::f64, 0.1, 0.6);
    std::vector<DetTarget> targets;
    for (int b = 0; b < 2; ++b) {
      std::vector<int64_t> labels;
      for (int64_t t = 0; t < T; ++t) labels.push_back((t + b) % 3);
      targets.push_back(make_target(labels, uint64_t(50 + 2 * b + T)));
    }
    const std::vector<MatchIndices> got = hungarian_match(logits, boxes, targets);
    REQUIRE(got.size() == 2);
    for (size_t b = 0; b < 2; ++b) {
      const std::vector<double> c = matching_cost(logits.select(0, int64_t(b)), boxes.select(0, int64_t(b)), targets[b]).to_vector<double>();
      REQUIRE(got[b].query.size() == size_t(std::min(Q, T)));
      double total = 0;
      for (size_t k = 0; k < got[b].query.size(); ++k) {
        if (k > 0) CHECK(got[b].query[k] > got[b].query[k - 1]);
        total += c[size_t(got[b].query[k] * T + got[b].target[k])];
      }
      // Brute force: every injective map of the shorter side into the longer one.
      const int64_t n = std::min(Q, T), m = std::max(Q, T);
      std::vector<int64_t> pick(size_t(n), -1);
      std::vector<char> used(size_t(m), 0);
      double best = n == 0 ? 0.0 : std::numeric_limits<double>::infinity();
      auto go = [&](auto&& self, int64_t i, double acc) -> void {
        if (i == n) {
          best = std::min(best, acc);
          return;
        }
        for (int64_t j = 0; j < m; ++j) {
          if (used[size_t(j)]) continue;
          used[size_t(j)] = 1;
          const double cij = Q >= T ? c[size_t(j * T + i)] : c[size_t(i * T + j)];  // i: target (Q >= T) or query
          self(self, i + 1, acc + cij);
          used[size_t(j)] = 0;
        }
      };
      go(go, 0, 0.0);
      CHECK(total == doctest::Approx(best).epsilon(1e-12));
    }
  }
}

TEST_CASE("hungarian_match and matching_cost: errors name the argument") {
  const Tensor logits = zeros({2, 5, 3}), boxes = full({2, 5, 4}, 0.3);
  const DetTarget ok = make_target({1}, 60);
  CHECK_THROWS_WITH_AS(hungarian_match(logits, boxes, {ok}), "hungarian_match: expected one target per image (2), got 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(hungarian_match(logits, zeros({2, 4, 4}), {ok, ok}),
                       "hungarian_match: expected pred_boxes of shape (2, 5, 4), got [2, 4, 4]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(hungarian_match(logits, boxes, {ok, make_target({3}, 61)}),
                       "matching_cost: target: label 3 is outside [0, 3)", std::out_of_range);
  Tensor nan_logits = zeros({2, 5, 3});
  nan_logits.select(0, 1).select(0, 2).fill_(std::numeric_limits<double>::quiet_NaN());
  CHECK_THROWS_WITH_AS(hungarian_match(nan_logits, boxes, {ok, ok}),
                       "hungarian_match: image 1: linear_sum_assignment: matrix contains invalid numeric entries (NaN or -inf)",
                       std::invalid_argument);
  DetTarget bad = ok;
  bad.labels = bad.labels.to(DType::f32);
  CHECK_THROWS_WITH_AS(matching_cost(logits.select(0, 0), boxes.select(0, 0), bad),
                       "matching_cost: target: expected integer labels of shape (T), got float32 [1]", std::invalid_argument);
  bad = ok;
  bad.boxes = zeros({1, 5});
  CHECK_THROWS_WITH_AS(matching_cost(logits.select(0, 0), boxes.select(0, 0), bad),
                       "matching_cost: target: expected float boxes of shape (1, 4), got float32 [1, 5]",
                       std::invalid_argument);
}
