// Segmentation areas and metrics (data/metrics/segmentation.h) against a plain per-pixel loop
// written here: ignore index, values outside the classes, NaN rules of the means, dtypes and
// strides, images larger than one parallel chunk, summing areas, reduce_zero_label, and errors.
// The comparison with mmseg's rules on fixture data is tests/fixtures/test_seg_metrics.cpp.
#include <cmath>

#include "data/metrics/segmentation.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// The reference: one pixel at a time, straight from the rules.
SegAreas reference(const Tensor& pred, const Tensor& label, int64_t nc, int64_t ignore = 255) {
  std::vector<double> p = pred.to_double_vector(), l = label.to_double_vector();
  SegAreas a(nc);
  for (size_t i = 0; i < p.size(); ++i) {
    if (l[i] == double(ignore)) continue;
    auto in = [&](double v) { return v >= 0 && v < double(nc); };
    if (in(p[i])) a.pred[size_t(p[i])]++;
    if (in(l[i])) a.label[size_t(l[i])]++;
    if (p[i] == l[i] && in(l[i])) a.intersect[size_t(l[i])]++;
  }
  for (size_t k = 0; k < size_t(nc); ++k) a.union_[k] = a.pred[k] + a.label[k] - a.intersect[k];
  return a;
}

bool same(const SegAreas& a, const SegAreas& b) {
  return a.intersect == b.intersect && a.union_ == b.union_ && a.pred == b.pred && a.label == b.label;
}

// A label map with values 0..nc-1 (and 255, and nc + 1 sometimes), and a prediction that agrees
// with it on roughly 70 % of the pixels.
std::pair<Tensor, Tensor> random_maps(const Shape& shape, int64_t nc, uint64_t seed, DType dt = DType::u8) {
  std::vector<double> u = test::test_tensor(shape, seed, DType::f64, 0, 1).to_double_vector();
  std::vector<double> v = test::test_tensor(shape, seed + 1, DType::f64, 0, 1).to_double_vector();
  std::vector<double> label(u.size()), pred(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    label[i] = u[i] < 0.1 ? 255 : u[i] < 0.12 ? double(nc + 1) : std::floor(u[i] * double(nc) * 0.999);
    pred[i] = v[i] < 0.7 ? (label[i] == 255 ? 0 : label[i]) : std::floor(v[i] * double(nc + 2));
  }
  return {from_vector(pred, shape, dt), from_vector(label, shape, dt)};
}

}  // namespace

TEST_CASE("areas match the per-pixel reference on odd shapes and every integer dtype") {
  for (const Shape& shape : std::vector<Shape>{{1, 1}, {7, 13}, {3, 5, 11}, {0, 4}, {300, 301}}) {
    for (DType dt : {DType::u8, DType::i32, DType::i64}) {
      INFO("shape " << shape_str(shape) << " dtype " << dtype_name(dt));
      auto [pred, label] = random_maps(shape, 5, uint64_t(shape_numel(shape) + 3), dt);
      SegAreas got = seg_areas(pred, label, 5);
      CHECK(same(got, reference(pred, label, 5)));
    }
  }
}

TEST_CASE("mixed dtypes and non-contiguous maps give the same areas") {
  auto [pred, label] = random_maps({19, 23}, 4, 77);
  const SegAreas want = reference(pred, label, 4);
  CHECK(same(seg_areas(pred.to(DType::i64), label, 4), want));
  CHECK(same(seg_areas(pred, label.to(DType::i32), 4), want));
  Tensor pt = pred.t().contiguous().t(), lt = label.t().contiguous().t();
  REQUIRE(!pt.is_contiguous());
  CHECK(same(seg_areas(pt, lt, 4), want));
}

TEST_CASE("another ignore index, and values outside the classes count for no class") {
  Tensor label = from_vector(std::vector<double>{0, 1, 2, 9, 3, -1}, {6}, DType::i64);
  Tensor pred = from_vector(std::vector<double>{0, 2, 2, 1, 3, -1}, {6}, DType::i64);
  SegAreas a = seg_areas(pred, label, 3, /*ignore_index=*/9);
  CHECK(a.intersect == std::vector<int64_t>{1, 0, 1});
  CHECK(a.pred == std::vector<int64_t>{1, 0, 2});  // 3 and -1 are outside 0..2
  CHECK(a.label == std::vector<int64_t>{1, 1, 1});
  CHECK(a.union_ == std::vector<int64_t>{1, 1, 2});
  CHECK(same(a, reference(pred, label, 3, 9)));
}

TEST_CASE("areas summed image by image equal the areas of the stacked batch") {
  auto [pred, label] = random_maps({4, 33, 17}, 6, 5);
  SegAreas sum(6);
  for (int64_t b = 0; b < 4; ++b) sum += seg_areas(pred.select(0, b), label.select(0, b), 6);
  CHECK(same(sum, seg_areas(pred, label, 6)));
  CHECK_THROWS_WITH_AS(sum += SegAreas(5), "SegAreas::operator+=: adding areas of 5 classes to areas of 6",
                       std::invalid_argument);
}

TEST_CASE("metrics: IoU, Acc, aAcc and the nanmeans, by hand") {
  SegAreas a(4);
  // class 0: I 3 P 4 L 5; class 1: predicted only (I 0 P 2 L 0); class 2: absent; class 3: I 1 P 1 L 2
  a.intersect = {3, 0, 0, 1};
  a.pred = {4, 2, 0, 1};
  a.label = {5, 0, 0, 2};
  a.union_ = {6, 2, 0, 2};
  SegMetrics m = seg_metrics(a);
  CHECK(m.iou[0] == doctest::Approx(0.5));
  CHECK(m.iou[1] == 0);              // predicted, never labelled: IoU 0, counted
  CHECK(std::isnan(m.iou[2]));       // absent from both: NaN, skipped
  CHECK(m.iou[3] == doctest::Approx(0.5));
  CHECK(m.acc[0] == doctest::Approx(0.6));
  CHECK(std::isnan(m.acc[1]));       // never labelled: Acc NaN, skipped
  CHECK(std::isnan(m.acc[2]));
  CHECK(m.acc[3] == doctest::Approx(0.5));
  CHECK(m.miou == doctest::Approx((0.5 + 0 + 0.5) / 3));
  CHECK(m.macc == doctest::Approx((0.6 + 0.5) / 2));
  CHECK(m.aacc == doctest::Approx(4.0 / 7));
  SegMetrics none = seg_metrics(SegAreas(3));
  CHECK(std::isnan(none.miou));
  CHECK(std::isnan(none.macc));
  CHECK(std::isnan(none.aacc));
}

TEST_CASE("reduce_zero_label: 0 -> 255, v -> v - 1, 255 stays, in every dtype") {
  const std::vector<double> raw = {0, 1, 2, 150, 254, 255};
  const std::vector<double> want = {255, 0, 1, 149, 253, 255};
  for (DType dt : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dt));
    Tensor in = from_vector(raw, {2, 3}, dt);
    Tensor out = reduce_zero_label(in);
    CHECK(out.dtype() == dt);
    CHECK(out.shape() == Shape{2, 3});
    CHECK(out.to_double_vector() == want);
    CHECK(in.to_double_vector() == raw);  // the input is left alone
    CHECK(reduce_zero_label(in.t()).to_double_vector() == reduce_zero_label(in.t().contiguous()).to_double_vector());
  }
}

TEST_CASE("wrong inputs are refused, naming the argument") {
  Tensor m = zeros({2, 2}, DType::u8);
  CHECK_THROWS_WITH_AS(seg_areas(zeros({2, 2}), m, 3), "seg_areas: pred must be uint8, int32 or int64, got float32",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(seg_areas(m, zeros({2, 2}, DType::boolean), 3),
                       "seg_areas: label must be uint8, int32 or int64, got bool", std::invalid_argument);
  CHECK_THROWS_WITH_AS(seg_areas(m, zeros({2, 3}, DType::u8), 3),
                       "seg_areas: pred [2, 2] and label [2, 3] must have the same shape", std::invalid_argument);
  CHECK_THROWS_WITH_AS(seg_areas(m, m, 0), "seg_areas: num_classes must be at least 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(reduce_zero_label(zeros({2})), "reduce_zero_label: label must be uint8, int32 or int64, got float32",
                       std::invalid_argument);
}
