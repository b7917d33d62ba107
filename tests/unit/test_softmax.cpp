// softmax / log_softmax along every dim against a long-double reference loop: dense, strided,
// the tiled layout (dim not last, inner wider than a tile), 0-d, empty, bf16; -inf / inf / NaN
// rows as PyTorch; no overflow for large inputs; the backward formulas; errors.
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "tests/support/check.h"
#include "tests/support/ref_loops.h"

using namespace rv;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reference (log_)softmax along `dim`, from the definition with the max subtracted.
std::vector<double> ref_softmax(const Tensor& x, int64_t dim, bool log) {
  std::vector<double> v = x.to_double_vector(), out(v.size());
  const Shape s = x.shape();
  if (s.empty()) return {log ? 0.0 : 1.0};
  Shape kept = s;
  kept[dim] = 1;
  for (int64_t o = 0; o < shape_numel(kept); ++o) {
    std::vector<int64_t> idx = test::multi_index(o, kept);
    long double mx = -INFINITY, sum = 0;
    for (idx[dim] = 0; idx[dim] < s[dim]; ++idx[dim]) mx = std::max<long double>(mx, v[test::flat_index(idx, s)]);
    for (idx[dim] = 0; idx[dim] < s[dim]; ++idx[dim]) sum += std::exp((long double)v[test::flat_index(idx, s)] - mx);
    for (idx[dim] = 0; idx[dim] < s[dim]; ++idx[dim]) {
      const int64_t f = test::flat_index(idx, s);
      const long double d = (long double)v[f] - mx;
      out[f] = double(log ? d - std::log(sum) : std::exp(d) / sum);
    }
  }
  return out;
}

void check_all_dims(const Tensor& x, double rtol, double atol) {
  for (int64_t dim = 0; dim < std::max<int64_t>(1, x.dim()); ++dim) {
    for (bool log : {false, true}) {
      CAPTURE(dim);
      CAPTURE(log);
      Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
      CHECK(y.dtype() == x.dtype());
      RV_EXPECT_CLOSE(y, from_vector(ref_softmax(x, dim, log), x.shape(), DType::f64), .rtol = rtol, .atol = atol);
      Tensor yn = log ? log_softmax(x, dim - x.dim()) : softmax(x, dim - x.dim());  // negative dim
      RV_EXPECT_CLOSE(yn, y, .rtol = 0, .atol = 1e-300);
    }
  }
}

}  // namespace

TEST_CASE("softmax and log_softmax along every dim, dense and strided, f32 and f64") {
  check_all_dims(test::test_tensor({3, 4, 5}, 1, DType::f32, -5, 5), 1e-6, 1e-7);
  check_all_dims(test::test_noncontiguous({2, 3, 7}, 2), 1e-6, 1e-7);
  check_all_dims(test::test_tensor({4, 1, 6}, 3, DType::f64, -20, 20), 1e-14, 1e-16);
  check_all_dims(test::test_tensor({3, 1000}, 4, DType::f32, -3, 3), 1e-5, 1e-8);  // long rows
  // dim 0 of (5, 2, 300): inner 600 > one tile of 256 columns
  check_all_dims(test::test_tensor({5, 2, 300}, 5, DType::f32, -4, 4), 1e-6, 1e-7);
  check_all_dims(scalar_tensor(0.3), 0, 1e-300);
}

TEST_CASE("softmax: bf16 computes in f32 and rounds once; empty tensors; rows sum to 1") {
  Tensor xb = test::test_tensor({4, 33}, 6, DType::bf16, -4, 4);
  Tensor y = softmax(xb, 1);
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, from_vector(ref_softmax(xb, 1, false), {4, 33}, DType::f64), .rtol = 1.0 / 128, .atol = 1e-30);
  RV_EXPECT_CLOSE(log_softmax(xb, 0), from_vector(ref_softmax(xb, 0, true), {4, 33}, DType::f64), .rtol = 1.0 / 128,
                  .atol = 1e-3);
  CHECK(softmax(empty({0, 5}), 1).shape() == Shape{0, 5});
  CHECK(log_softmax(empty({3, 0}), 1).shape() == Shape{3, 0});
  Tensor x = test::test_tensor({8, 100}, 7, DType::f32, -10, 10);
  RV_EXPECT_CLOSE(sum(softmax(x, 1), {1}), ones({8}), .rtol = 1e-6, .atol = 1e-6);
}

TEST_CASE("softmax: large inputs do not overflow; -inf, inf and NaN follow PyTorch") {
  Tensor big = from_vector(std::vector<double>{1000, 1001, 999}, {3});
  RV_EXPECT_CLOSE(softmax(big, 0), from_vector(ref_softmax(big, 0, false), {3}, DType::f64), .rtol = 1e-6, .atol = 1e-7);
  // PyTorch: softmax([-inf, 0]) = [0, 1], log_softmax = [-inf, 0]
  Tensor part = from_vector(std::vector<double>{-INFINITY, 0}, {2});
  CHECK(softmax(part, 0).to_vector<float>() == std::vector<float>{0, 1});
  CHECK(log_softmax(part, 0).to_vector<float>() == std::vector<float>{-INFINITY, 0});
  // all -inf, any +inf, any NaN: the whole slice is NaN in PyTorch; other slices untouched
  Tensor bad = from_vector(std::vector<double>{-INFINITY, -INFINITY, INFINITY, 0, kNaN, 0, 1, 1}, {4, 2});
  for (bool log : {false, true}) {
    std::vector<float> v = (log ? log_softmax(bad, 1) : softmax(bad, 1)).to_vector<float>();
    for (int i = 0; i < 6; ++i) CHECK(std::isnan(v[i]));
    CHECK(v[6] == doctest::Approx(log ? std::log(0.5) : 0.5));
  }
  // the same along dim 0 (the tiled path)
  std::vector<float> c = softmax(bad.t(), 0).to_vector<float>();
  CHECK(std::isnan(c[0]));
  CHECK(c[3] == 0.5f);
}

TEST_CASE("backward: softmax y (g - sum(g y)), log_softmax g - exp(y) sum(g)") {
  for (int64_t dim : {0, 1}) {
    for (bool log : {false, true}) {
      CAPTURE(dim);
      CAPTURE(log);
      Tensor x = test::test_tensor({3, 4}, 8, DType::f64, -2, 2).requires_grad_();
      Tensor g = test::test_tensor({3, 4}, 9, DType::f64);
      Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
      y.backward(g);
      std::vector<double> yv = y.to_double_vector(), gv = g.to_double_vector(), want(12);
      for (int64_t o = 0; o < (dim == 0 ? 4 : 3); ++o) {
        auto at = [&](int64_t j) { return dim == 0 ? j * 4 + o : o * 4 + j; };
        const int64_t n = dim == 0 ? 3 : 4;
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += log ? gv[at(j)] : gv[at(j)] * yv[at(j)];
        for (int64_t j = 0; j < n; ++j)
          want[at(j)] = log ? gv[at(j)] - std::exp(yv[at(j)]) * s : yv[at(j)] * (gv[at(j)] - s);
      }
      RV_EXPECT_CLOSE(x.grad(), from_vector(want, {3, 4}, DType::f64), .rtol = 1e-13, .atol = 1e-15);
    }
  }
  // a bf16 input gets a bf16 gradient
  Tensor xb = test::test_tensor({2, 5}, 10, DType::bf16).requires_grad_();
  sum(softmax(xb, 1) * test::test_tensor({2, 5}, 11, DType::bf16)).backward();
  CHECK(xb.grad().dtype() == DType::bf16);
}

TEST_CASE("softmax errors name the op") {
  CHECK_THROWS_WITH(softmax(arange(4), 0), "softmax: expected a float tensor, got int64");
  CHECK_THROWS_WITH(log_softmax(ones({2, 3}), 2), doctest::Contains("log_softmax: dim 2 is out of range"));
}
