// dropout / drop_path: the mask against Philox draws computed here, statistics, reproducibility,
// layout independence, identity cases, p = 1, gradients, dtypes and errors.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::test;

TEST_CASE("dropout: element i is kept iff its Philox uniform is below 1 - p, and scaled by 1 / (1 - p)") {
  Generator gen(42, 3);
  Tensor x = test_tensor({5, 7, 3}, 1);
  const double p = 0.35;
  const uint64_t offset = gen.offset();
  Tensor y = dropout(x, p, true, gen);
  CHECK(gen.offset() >= offset + 105);  // the draw consumed its range
  std::vector<double> xv = x.to_double_vector(), e(xv.size());
  for (size_t i = 0; i < xv.size(); ++i)
    e[i] = philox_uniform(42, 3, offset + i) < 1.0 - p ? double(float(xv[i]) * float(1.0 / (1.0 - p))) : 0.0;
  RV_EXPECT_CLOSE(y, from_vector(e, x.shape(), DType::f64), .rtol = 1e-7, .atol = 1e-30);
}

TEST_CASE("dropout: the block-wise kernel keeps exactly the reference mask (any offset, many chunks)") {
  // Sizes over the 16384-element thread chunk, odd lengths, offsets that are not a multiple of 4
  // (so blocks straddle the start of the range and of each chunk), and p for which
  // (1 - p) 2^24 is an integer (u == 1 - p must be dropped) or not.
  for (double p : {0.1, 0.5, 0.25, 1.0 - 3.0 / 16777216.0, 7.0 / 16777216.0}) {
    for (uint64_t start : {0, 1, 2, 3, 4097}) {
      CAPTURE(p);
      CAPTURE(start);
      Generator gen(1234567, 11);
      gen.set_offset(start);
      const int64_t n = 40001;
      Tensor x = test_tensor({n}, 5);
      Tensor y = dropout(x, p, true, gen);
      std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
      const float scale = float(1.0 / (1.0 - p));
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) {
        const bool keep = double(philox_uniform(1234567, 11, start + uint64_t(i))) < 1.0 - p;
        if (yv[i] != (keep ? xv[i] * scale : 0.0f)) ++wrong;
      }
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("dropout: statistics of a large draw") {
  Generator gen(7);
  const int64_t n = 200000;
  const double p = 0.3;
  Tensor y = dropout(ones({n}), p, true, gen);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros_n = 0;
  for (float f : v) {
    if (f == 0.0f) ++zeros_n;
    else CHECK(f == float(1.0 / 0.7));
  }
  const double frac = double(zeros_n) / n, sigma = std::sqrt(p * (1 - p) / n);
  CHECK(std::fabs(frac - p) < 5 * sigma);
  CHECK(mean(y).item() == doctest::Approx(1.0).epsilon(5 * sigma / 0.7 + 1e-6));
}

TEST_CASE("dropout: reproducible from the seed, fresh on each call, independent of layout") {
  Tensor x = test_tensor({4, 6}, 2);
  Generator a(9), b(9);
  Tensor ya = dropout(x, 0.5, true, a), yb = dropout(x, 0.5, true, b);
  CHECK(ya.to_vector<float>() == yb.to_vector<float>());
  CHECK(dropout(x, 0.5, true, a).to_vector<float>() != ya.to_vector<float>());
  // a transposed-storage input with the same values gets the same mask
  Generator c(9);
  Tensor xn = test_noncontiguous({4, 6}, 2);
  CHECK(dropout(xn, 0.5, true, c).to_vector<float>() == ya.to_vector<float>());
}

TEST_CASE("dropout: p = 0 and eval are the identity, p = 1 gives zeros") {
  Generator gen(1);
  Tensor x = test_tensor({3, 4}, 3).requires_grad_();
  CHECK(dropout(x, 0.0, true, gen).same(x));
  CHECK(dropout(x, 0.7, false, gen).same(x));
  CHECK(gen.offset() == 0);  // no numbers drawn
  Tensor z = dropout(x, 1.0, true, gen);
  for (double v : z.to_double_vector()) CHECK(v == 0.0);
  sum(z).backward();
  for (double v : x.grad().to_double_vector()) CHECK(v == 0.0);
}

TEST_CASE("dropout: the gradient uses the same mask and scale") {
  Generator gen(11);
  Tensor x = test_tensor({50, 40}, 4, DType::f32, 0.5, 1.5).requires_grad_();  // nonzero values
  Tensor y = dropout(x, 0.4, true, gen);
  Tensor g = test_tensor({50, 40}, 5);
  y.backward(g);
  std::vector<double> xv = x.detach().to_double_vector(), yv = y.to_double_vector(), gv = g.to_double_vector();
  std::vector<double> gx = x.grad().to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const double m = yv[i] / xv[i];  // 0 or 1/(1-p)
    CHECK(gx[i] == doctest::Approx(gv[i] * m).epsilon(1e-6));
  }
}

TEST_CASE("dropout: bf16 computes in f32 and rounds; errors") {
  Generator gen(12);
  Tensor x = test_tensor({64}, 6, DType::bf16);
  Tensor y = dropout(x, 0.5, true, gen);
  CHECK(y.dtype() == DType::bf16);
  for (double v : y.to_double_vector()) CHECK(std::isfinite(v));
  CHECK(dropout(zeros({0, 3}), 0.5, true, gen).shape() == Shape{0, 3});
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true, gen), doctest::Contains("dropout: expected a probability"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1, true, gen), doctest::Contains("[0, 1]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(dropout(zeros({3}, DType::i32), 0.5, true, gen), doctest::Contains("float tensor"),
                       std::invalid_argument);
}

TEST_CASE("drop_path: one draw per sample, whole samples kept (scaled) or zeroed, like timm") {
  Generator gen(21, 2);
  const int64_t B = 2000;
  const double p = 0.25;
  Tensor x = test_tensor({B, 3, 5}, 7, DType::f32, 0.5, 1.5).requires_grad_();
  const uint64_t offset = gen.offset();
  Tensor y = drop_path(x, p, true, gen);
  CHECK(gen.offset() >= offset + B);
  std::vector<double> xv = x.detach().to_double_vector(), yv = y.to_double_vector();
  int64_t dropped = 0;
  for (int64_t b = 0; b < B; ++b) {
    const bool keep = philox_uniform(21, 2, offset + b) < 1.0 - p;
    dropped += keep ? 0 : 1;
    for (int64_t e = 0; e < 15; ++e) {
      const int64_t i = b * 15 + e;
      if (keep) CHECK(yv[i] == doctest::Approx(xv[i] / (1 - p)).epsilon(1e-6));
      else CHECK(yv[i] == 0.0);
    }
  }
  CHECK(std::fabs(double(dropped) / B - p) < 5 * std::sqrt(p * (1 - p) / B));
  Tensor g = ones({B, 3, 5});
  y.backward(g);
  std::vector<double> gx = x.grad().to_double_vector();
  for (int64_t i = 0; i < B * 15; ++i) CHECK(gx[i] == doctest::Approx(yv[i] / xv[i]).epsilon(1e-6));
}

TEST_CASE("drop_path: identity cases, p = 1, reproducibility, shapes and errors") {
  Generator gen(3);
  Tensor x = test_tensor({4, 2, 3}, 8);
  CHECK(drop_path(x, 0.0, true, gen).same(x));
  CHECK(drop_path(x, 0.5, false, gen).same(x));
  for (double v : drop_path(x, 1.0, true, gen).to_double_vector()) CHECK(v == 0.0);
  Generator a(5), b(5);
  CHECK(drop_path(x, 0.5, true, a).to_vector<float>() == drop_path(x, 0.5, true, b).to_vector<float>());
  CHECK(drop_path(zeros({0, 3}), 0.5, true, gen).shape() == Shape{0, 3});
  CHECK(drop_path(ones({6}), 0.5, true, gen).shape() == Shape{6});  // 1-D: each element is a sample
  CHECK_THROWS_WITH_AS(drop_path(scalar_tensor(1.0), 0.5, true, gen), doctest::Contains("drop_path"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(drop_path(x, 2.0, true, gen), doctest::Contains("drop_path: expected a probability"),
                       std::invalid_argument);
}
