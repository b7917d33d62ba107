// Box ops (models/det/box_ops.h) against plain reference loops: format conversions (batched,
// non-contiguous, empty), area, pairwise IoU / GIoU (overlapping, nested, disjoint, identical and
// touching boxes, empty sides), the matched-pair GIoU, and the error messages.
#include <cmath>
#include <vector>

#include "engine/ops/shape.h"
#include "models/det/box_ops.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

struct Box {
  double x1, y1, x2, y2;
};

std::vector<Box> boxes_of(const Tensor& t) {  // (N, 4)
  const std::vector<double> v = t.to_double_vector();
  std::vector<Box> out;
  for (size_t i = 0; i + 3 < v.size(); i += 4) out.push_back({v[i], v[i + 1], v[i + 2], v[i + 3]});
  return out;
}

double area(const Box& b) { return (b.x2 - b.x1) * (b.y2 - b.y1); }

double ref_iou(const Box& a, const Box& b) {
  const double iw = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double ih = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  return iw * ih / (area(a) + area(b) - iw * ih);
}

double ref_giou(const Box& a, const Box& b) {
  const double iw = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double ih = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double uni = area(a) + area(b) - iw * ih;
  const double c = (std::max(a.x2, b.x2) - std::min(a.x1, b.x1)) * (std::max(a.y2, b.y2) - std::min(a.y1, b.y1));
  return iw * ih / uni - (c - uni) / c;
}

// n valid xyxy boxes in [0, 1]: corner in [0, 0.7), size in [0.05, 0.5).
Tensor random_xyxy(int64_t n, uint64_t seed, DType dtype = DType::f64) {
  const std::vector<double> u = test::test_tensor({n, 4}, seed, DType::f64, 0.0, 1.0).to_double_vector();
  std::vector<double> v(u.size());
  for (size_t i = 0; i < u.size(); i += 4) {
    v[i] = 0.7 * u[i];
    v[i + 1] = 0.7 * u[i + 1];
    v[i + 2] = v[i] + 0.05 + 0.45 * u[i + 2];
    v[i + 3] = v[i + 1] + 0.05 + 0.45 * u[i + 3];
  }
  return from_vector(v, {n, 4}, dtype);
}

// The same values as t (N, 4), stored transposed: a non-contiguous (N, 4) view.
Tensor noncontiguous(const Tensor& t) { return t.t().contiguous().t(); }

}  // namespace

TEST_CASE("box_cxcywh_to_xyxy and box_xyxy_to_cxcywh: reference loop, batched, non-contiguous, round trip") {
  const Tensor c = test::test_tensor({2, 3, 4}, 1, DType::f64, 0.1, 0.9);
  const Tensor x = box_cxcywh_to_xyxy(c);
  REQUIRE(x.shape() == Shape{2, 3, 4});
  const std::vector<double> cv = c.to_double_vector(), xv = x.to_double_vector();
  for (size_t i = 0; i < cv.size(); i += 4) {
    CHECK(xv[i] == cv[i] - 0.5 * cv[i + 2]);
    CHECK(xv[i + 1] == cv[i + 1] - 0.5 * cv[i + 3]);
    CHECK(xv[i + 2] == cv[i] + 0.5 * cv[i + 2]);
    CHECK(xv[i + 3] == cv[i + 1] + 0.5 * cv[i + 3]);
  }
  const Tensor back = box_xyxy_to_cxcywh(x);
  RV_EXPECT_CLOSE(back, c, 1e-15, 1e-15);
  const std::vector<double> bv = back.to_double_vector();
  for (size_t i = 0; i < xv.size(); i += 4) {
    CHECK(bv[i] == (xv[i] + xv[i + 2]) * 0.5);
    CHECK(bv[i + 2] == xv[i + 2] - xv[i]);
  }
  const Tensor flat = test::test_tensor({5, 4}, 2, DType::f32, 0.1, 0.9);
  RV_EXPECT_CLOSE(box_cxcywh_to_xyxy(noncontiguous(flat)), box_cxcywh_to_xyxy(flat), 0.0, 0.0);
  RV_EXPECT_CLOSE(box_xyxy_to_cxcywh(noncontiguous(flat)), box_xyxy_to_cxcywh(flat), 0.0, 0.0);
  CHECK(box_cxcywh_to_xyxy(zeros({0, 4})).shape() == Shape{0, 4});
  CHECK(box_xyxy_to_cxcywh(zeros({4})).shape() == Shape{4});  // one box without a batch dim
}

TEST_CASE("box_area: reference loop") {
  const Tensor b = random_xyxy(6, 3);
  const std::vector<Box> bs = boxes_of(b);
  const std::vector<double> got = box_area(b).to_double_vector();
  REQUIRE(got.size() == bs.size());
  for (size_t i = 0; i < bs.size(); ++i) CHECK(got[i] == area(bs[i]));
  CHECK(box_area(zeros({0, 4})).shape() == Shape{0});
}

TEST_CASE("box_iou and generalized_box_iou: reference loops on random and special pairs") {
  Tensor a = random_xyxy(7, 4);
  const Tensor extra = from_vector(std::vector<double>{0.1, 0.1, 0.4, 0.4,    // identical to b's row 5
                                                       0.0, 0.0, 0.2, 0.2,    // disjoint from b's row 6
                                                       0.2, 0.2, 0.3, 0.3},   // nested in b's row 5
                                   {3, 4}, DType::f64);
  Tensor b = from_vector(std::vector<double>{0.1, 0.1, 0.4, 0.4, 0.6, 0.5, 0.9, 0.95}, {2, 4}, DType::f64);
  a = cat({a, extra}, 0);  // (10, 4)
  b = cat({random_xyxy(5, 5), b, from_vector(std::vector<double>{0.2, 0.0, 0.5, 0.2}, {1, 4}, DType::f64)}, 0);  // (8, 4); row 7 touches extra row 1
  const std::vector<Box> as = boxes_of(a), bs = boxes_of(b);
  const Tensor iou = box_iou(a, b), giou = generalized_box_iou(a, b);
  REQUIRE(iou.shape() == Shape{10, 8});
  REQUIRE(giou.shape() == Shape{10, 8});
  const std::vector<double> iv = iou.to_double_vector(), gv = giou.to_double_vector();
  for (size_t i = 0; i < as.size(); ++i)
    for (size_t j = 0; j < bs.size(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      CHECK(std::abs(iv[i * 8 + j] - ref_iou(as[i], bs[j])) <= 1e-15);
      CHECK(std::abs(gv[i * 8 + j] - ref_giou(as[i], bs[j])) <= 1e-15);
      CHECK(gv[i * 8 + j] <= iv[i * 8 + j] + 1e-15);  // GIoU <= IoU, within [-1, 1]
      CHECK(gv[i * 8 + j] >= -1.0);
    }
  CHECK(iv[7 * 8 + 5] == 1.0);  // identical boxes
  CHECK(gv[7 * 8 + 5] == 1.0);
  CHECK(iv[8 * 8 + 6] == 0.0);  // disjoint: IoU 0, GIoU < 0
  CHECK(gv[8 * 8 + 6] < 0.0);
  CHECK(iv[9 * 8 + 5] == doctest::Approx(0.01 / 0.09).epsilon(1e-12));  // nested: area ratio
  CHECK(iv[8 * 8 + 7] == 0.0);  // touching along x = 0.2: no overlap
  // Non-contiguous inputs, f32.
  RV_EXPECT_CLOSE(generalized_box_iou(noncontiguous(a), noncontiguous(b)), giou, 0.0, 0.0);
  const Tensor g32 = generalized_box_iou(a.to(DType::f32), b.to(DType::f32));
  CHECK(g32.dtype() == DType::f32);
  RV_EXPECT_CLOSE(g32.to(DType::f64), giou, 1e-5, 1e-6);
  // Empty sides.
  CHECK(box_iou(zeros({0, 4}, DType::f64), b).shape() == Shape{0, 8});
  CHECK(generalized_box_iou(a, zeros({0, 4}, DType::f64)).shape() == Shape{10, 0});
}

TEST_CASE("elementwise_generalized_box_iou is the diagonal of generalized_box_iou, any leading shape") {
  const Tensor a = random_xyxy(6, 6), b = random_xyxy(6, 7);
  const std::vector<double> diag = generalized_box_iou(a, b).to_double_vector();
  const std::vector<double> got = elementwise_generalized_box_iou(a, b).to_double_vector();
  REQUIRE(got.size() == 6);
  for (size_t i = 0; i < 6; ++i) CHECK(got[i] == diag[i * 6 + i]);
  const Tensor batched = elementwise_generalized_box_iou(a.reshape({2, 3, 4}), noncontiguous(b).reshape({2, 3, 4}));
  CHECK(batched.shape() == Shape{2, 3});
  RV_EXPECT_CLOSE(batched.reshape({6}), from_vector(got, {6}, DType::f64), 0.0, 0.0);
  CHECK(elementwise_generalized_box_iou(zeros({0, 4}), zeros({0, 4})).shape() == Shape{0});
}

TEST_CASE("box ops: errors name the op, the argument and what was expected") {
  CHECK_THROWS_WITH_AS(box_cxcywh_to_xyxy(zeros({3, 5})), "box_cxcywh_to_xyxy: expected boxes of shape (..., 4), got [3, 5]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(box_area(zeros({3, 4}, DType::i64)), "box_area: expected float boxes, got int64", std::invalid_argument);
  CHECK_THROWS_WITH_AS(box_iou(zeros({2, 3, 4}), zeros({3, 4})), "box_iou: expected boxes1 of shape (N, 4), got [2, 3, 4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(generalized_box_iou(zeros({2, 4}), zeros({4})),
                       "generalized_box_iou: expected boxes2 of shape (N, 4), got [4]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(elementwise_generalized_box_iou(zeros({2, 4}), zeros({3, 4})),
                       "elementwise_generalized_box_iou: expected boxes1 and boxes2 of the same shape, got [2, 4] and [3, 4]",
                       std::invalid_argument);
}
