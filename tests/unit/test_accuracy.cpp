// Top-1 / top-5 accuracy counts (data/metrics/accuracy.h) against a plain reference: a stable
// sort of each row by descending logit, the label's position in it. Ties (logits rounded to a
// few values), NaN, non-contiguous and bf16 logits, every label dtype, fewer than 5 classes,
// an empty batch, sums over shards equal to the whole, and the error messages.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/metrics/accuracy.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// Reference: position of y in a stable sort by descending logit (NaN first, as largest).
AccuracyCounts reference(const Tensor& logits, const std::vector<int64_t>& y) {
  const int64_t B = logits.size(0), C = logits.size(1);
  std::vector<double> x = logits.to_double_vector();
  AccuracyCounts c;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> idx(static_cast<size_t>(C));
    std::iota(idx.begin(), idx.end(), 0);
    const double* row = x.data() + b * C;
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) {
      if (std::isnan(row[i]) || std::isnan(row[j])) return std::isnan(row[i]) && !std::isnan(row[j]);
      return row[i] > row[j];
    });
    int64_t rank = std::find(idx.begin(), idx.end(), y[size_t(b)]) - idx.begin();
    c.top1 += rank < 1;
    c.top5 += rank < std::min<int64_t>(5, C);
    ++c.total;
  }
  return c;
}

// Logits rounded to a few levels so that ties are common.
Tensor tied_logits(int64_t B, int64_t C, uint64_t seed, DType dt = DType::f32) {
  std::vector<double> v = test::test_tensor({B, C}, seed, DType::f64).to_double_vector();
  for (double& x : v) x = std::round(x * 4) / 4;
  return from_vector(v, {B, C}, dt);
}

std::vector<int64_t> labels_for(int64_t B, int64_t C, uint64_t seed) {
  std::vector<double> u = test::test_tensor({B}, seed, DType::f64, 0, double(C)).to_double_vector();
  std::vector<int64_t> y;
  for (double x : u) y.push_back(std::min<int64_t>(C - 1, int64_t(x)));
  return y;
}

}  // namespace

TEST_CASE("counts match the stable-sort reference on tied logits of odd shapes") {
  for (auto [B, C] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 2}, {7, 5}, {33, 6}, {64, 10}, {5, 1000}}) {
    INFO("B " << B << " C " << C);
    Tensor x = tied_logits(B, C, uint64_t(B * 131 + C));
    std::vector<int64_t> y = labels_for(B, C, uint64_t(B + C));
    AccuracyCounts got = accuracy_counts(x, from_vector(y, {B}));
    AccuracyCounts want = reference(x, y);
    CHECK(got == want);
    if (C <= 5) CHECK(got.top5 == B);  // top-5 of <= 5 classes is everything
  }
}

TEST_CASE("ties go to the lower class index; NaN counts as the largest logit") {
  Tensor x = from_vector(std::vector<double>{1, 3, 3, 3, 3, 3, 3, 0}, {1, 8});
  auto count = [&](int64_t y) { return accuracy_counts(x, from_vector(std::vector<int64_t>{y}, {1})); };
  CHECK(count(1) == AccuracyCounts{1, 1, 1});  // first of six equal maxima: rank 0
  CHECK(count(2) == AccuracyCounts{0, 1, 1});  // rank 1
  CHECK(count(5) == AccuracyCounts{0, 1, 1});  // rank 4: still top-5
  CHECK(count(6) == AccuracyCounts{0, 0, 1});  // rank 5
  const double nan = std::nan("");
  Tensor n = from_vector(std::vector<double>{0, nan, 5, nan}, {1, 4}, DType::f64);
  auto ncount = [&](int64_t y) { return accuracy_counts(n, from_vector(std::vector<int64_t>{y}, {1})); };
  CHECK(ncount(1) == AccuracyCounts{1, 1, 1});
  CHECK(ncount(3) == AccuracyCounts{0, 1, 1});
  CHECK(ncount(2) == AccuracyCounts{0, 1, 1});  // two NaNs beat 5
  CHECK(ncount(2) == reference(n, {2}));
  CHECK(ncount(3) == reference(n, {3}));
}

TEST_CASE("non-contiguous, bf16, f16 and f64 logits, and u8 / i32 labels, count the same") {
  const int64_t B = 9, C = 12;
  Tensor x = tied_logits(B, C, 5);
  std::vector<int64_t> y = labels_for(B, C, 6);
  const AccuracyCounts want = reference(x, y);
  Tensor xt = x.t().contiguous().t();  // same values, column-major
  REQUIRE(!xt.is_contiguous());
  CHECK(accuracy_counts(xt, from_vector(y, {B})) == want);
  CHECK(accuracy_counts(x.to(DType::bf16), from_vector(y, {B})) == want);  // quarter steps are exact in bf16
  CHECK(accuracy_counts(x.to(DType::f16), from_vector(y, {B})) == want);
  CHECK(accuracy_counts(x.to(DType::f64), from_vector(y, {B})) == want);
  Tensor y64 = from_vector(y, {B});
  CHECK(accuracy_counts(x, y64.to(DType::i32)) == want);
  CHECK(accuracy_counts(x, y64.to(DType::u8)) == want);
  Tensor ystrided = from_vector(std::vector<int64_t>(size_t(2 * B), 0), {B, 2}).select(1, 0);
  ystrided.copy_(y64);
  CHECK(accuracy_counts(x, ystrided) == want);
  // logits that require grad: counted without recording anything
  Tensor leaf = x.to(DType::f64).detach().requires_grad_();
  CHECK(accuracy_counts(leaf, y64) == want);
}

TEST_CASE("counts of shards add up to the counts of the whole batch") {
  const int64_t B = 50, C = 7;
  Tensor x = tied_logits(B, C, 11);
  std::vector<int64_t> y = labels_for(B, C, 12);
  AccuracyCounts whole = accuracy_counts(x, from_vector(y, {B}));
  AccuracyCounts sum;
  for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{0, 13}, {13, 13}, {13, 40}, {40, 50}}) {
    std::vector<int64_t> ys(y.begin() + lo, y.begin() + hi);
    sum += accuracy_counts(x.narrow(0, lo, hi - lo), from_vector(ys, {hi - lo}));
  }
  CHECK(sum == whole);
  CHECK(whole.top1_fraction() == doctest::Approx(double(whole.top1) / 50));
  CHECK(whole.top5_fraction() == doctest::Approx(double(whole.top5) / 50));
}

TEST_CASE("an empty batch counts nothing, and its fractions are NaN") {
  AccuracyCounts c = accuracy_counts(empty({0, 10}), empty({0}, DType::i64));
  CHECK(c == AccuracyCounts{});
  CHECK(std::isnan(c.top1_fraction()));
  CHECK(std::isnan(c.top5_fraction()));
}

TEST_CASE("wrong inputs are refused, naming the argument") {
  Tensor x = zeros({2, 3});
  Tensor y = from_vector(std::vector<int64_t>{0, 2}, {2});
  CHECK_THROWS_WITH_AS(accuracy_counts(zeros({2, 3}, DType::i64), y), "accuracy_counts: logits must be a float tensor, got int64",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy_counts(zeros({6}), y), "accuracy_counts: logits must be (B, C), got shape [6]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy_counts(x, y.to(DType::f32)),
                       "accuracy_counts: labels must be int64, int32 or uint8, got float32", std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy_counts(x, from_vector(std::vector<int64_t>{0}, {1})),
                       "accuracy_counts: labels must be (B,) with B = 2 as in logits [2, 3], got shape [1]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy_counts(zeros({2, 0}), y), doctest::Contains("at least one class"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(accuracy_counts(x, from_vector(std::vector<int64_t>{0, 3}, {2})),
                       "accuracy_counts: label 3 of sample 1 is outside 0..2", std::out_of_range);
  CHECK_THROWS_WITH_AS(accuracy_counts(x, from_vector(std::vector<int64_t>{-1, 0}, {2})),
                       "accuracy_counts: label -1 of sample 0 is outside 0..2", std::out_of_range);
}
