// test_reduce_unary.cpp: the sum over dims (sum, mean, sum_to_shape via a broadcast op's
// backward) and the unary / tensor-scalar math ops on cuda, forward and backward, against the
// same public ops on the CPU. Skipped (exit 77) without a GPU.
//
// Tolerances:
//   sums: both sides accumulate in double, in different orders: rtol 1e-6 / atol 1e-6 for f32
//     outputs (one f32 rounding of nearly the same double), 1e-12 for f64, and one bf16 ulp
//     (rtol 8e-3) for bf16 outputs (the double may land on the other side of a bf16 rounding).
//   unary: the ops built from IEEE + - * / sqrt and comparisons (neg, abs, sqrt, rsqrt, the
//     scalar ops, clamp, x^2) and their gradients are computed with the CPU's operations in
//     the CPU's order, so they must match bit for bit (atol = rtol = 0). exp, log, tanh and a
//     general pow come from different math libraries (both within ~2-4 ulp): rtol 2e-6 /
//     atol 1e-7 for f32, 1e-13 for f64, and one bf16 ulp for bf16. Their gradients use that
//     output: tanh's 1 - y^2 turns an ulp of y = 0.964 into ~3e-6 relative (and the CPU may
//     fuse it into an FMA): gradients rtol 1e-5 for f32, 1e-12 for f64.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

double sum_tol(DType dt) { return dt == DType::f64 ? 1e-12 : (dt == DType::bf16 ? 8e-3 : 1e-6); }

// Every non-empty subset of {0, ..., nd-1}, as dim lists.
std::vector<Shape> subsets(int64_t nd) {
  std::vector<Shape> out;
  for (int64_t m = 1; m < (int64_t(1) << nd); ++m) {
    Shape dims;
    for (int64_t d = 0; d < nd; ++d)
      if (m & (int64_t(1) << d)) dims.push_back(d);
    out.push_back(dims);
  }
  return out;
}

}  // namespace

TEST_CASE("sum and mean over every subset of dims on cuda match the CPU (keepdim, non-contiguous, dtypes)") {
  for (const Shape& shape : {Shape{3, 5, 7}, Shape{2, 197, 384}}) {
    for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
      const Tensor x = test::test_tensor(shape, 1, DType::f32).to(dt);
      const Tensor d = x.cuda();
      const Tensor xt = x.permute({2, 0, 1}), dt_view = d.permute({2, 0, 1});  // non-contiguous
      for (const Shape& dims : subsets(3)) {
        for (bool keepdim : {false, true}) {
          CAPTURE(shape_str(shape));
          CAPTURE(dtype_name(dt));
          CAPTURE(shape_str(dims));
          CAPTURE(keepdim);
          const double tol = sum_tol(dt);
          const Tensor s = sum(d, dims, keepdim);
          CHECK(s.device() == kDev);
          CHECK(s.dtype() == dt);
          RV_EXPECT_CLOSE(s.cpu(), sum(x, dims, keepdim), .rtol = tol, .atol = tol);
          RV_EXPECT_CLOSE(mean(d, dims, keepdim).cpu(), mean(x, dims, keepdim), .rtol = tol, .atol = tol);
          RV_EXPECT_CLOSE(sum(dt_view, dims, keepdim).cpu(), sum(xt, dims, keepdim), .rtol = tol, .atol = tol);
        }
      }
    }
  }
}

TEST_CASE("sum over dims on cuda: bias-gradient shapes, odd lengths, size-1 and empty dims, determinism") {
  struct Case {
    Shape shape;
    Shape dims;
  };
  const Case cases[] = {
      {{4097, 7}, {0}},        // column sums, rows not a multiple of anything
      {{1000, 1}, {0}},        // a size-1 kept dim
      {{7, 4097}, {1}},        // long rows (the block-per-output path)
      {{1, 1}, {0, 1}},        // one element
      {{197, 3, 1}, {0, 2}},   // a reduced size-1 dim
      {{0, 5}, {0}},           // empty reduced dim: zeros
      {{5, 0}, {0}},           // no outputs
      {{64, 3, 384}, {0, 1}},  // bias gradient of a (B, N, C) activation
      {{2, 3, 4, 5}, {1, 3}},  // interleaved kept and reduced dims
  };
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.shape));
    CAPTURE(shape_str(c.dims));
    const Tensor x = test::test_tensor(c.shape, 2);
    const Tensor s = sum(x.cuda(), c.dims);
    RV_EXPECT_CLOSE(s.cpu(), sum(x, c.dims), .rtol = 1e-6, .atol = 1e-6);
    CHECK(sum(x.cuda(), c.dims).cpu().to_double_vector() == s.cpu().to_double_vector());  // same bits again
  }
  // A transposed view whose reduced dim is the strided one, and an expanded (stride-0) input.
  const Tensor m = test::test_tensor({300, 129}, 3);
  RV_EXPECT_CLOSE(sum(m.cuda().t(), {1}).cpu(), sum(m.t(), {1}), .rtol = 1e-6, .atol = 1e-6);
  RV_EXPECT_CLOSE(sum(m.cuda().t(), {0}).cpu(), sum(m.t(), {0}), .rtol = 1e-6, .atol = 1e-6);
  const Tensor col = test::test_tensor({33, 1}, 4);
  RV_EXPECT_CLOSE(sum(col.cuda().expand({33, 70}), {0}).cpu(), sum(col.expand({33, 70}), {0}), .rtol = 1e-6,
                  .atol = 1e-6);
}

TEST_CASE("sum_to_shape on cuda, through the backward of broadcast ops, and sum/mean backward") {
  const Tensor x0 = test::test_tensor({6, 197, 24}, 5), b0 = test::test_tensor({24}, 6), c0 = test::test_tensor({6, 1, 24}, 7);
  Tensor x = x0.cuda().requires_grad_(), b = b0.cuda().requires_grad_(), c = c0.cuda().requires_grad_();
  sum(mean(mul(add(x, b), c), {1})).backward();
  Tensor xh = x0.clone().requires_grad_(), bh = b0.clone().requires_grad_(), ch = c0.clone().requires_grad_();
  sum(mean(mul(add(xh, bh), ch), {1})).backward();
  REQUIRE(b.grad().defined());
  CHECK(b.grad().device() == kDev);
  CHECK(b.grad().shape() == Shape{24});
  RV_EXPECT_CLOSE(x.grad().cpu(), xh.grad(), .rtol = 1e-6, .atol = 1e-7);
  RV_EXPECT_CLOSE(b.grad().cpu(), bh.grad(), .rtol = 1e-6, .atol = 1e-6);
  RV_EXPECT_CLOSE(c.grad().cpu(), ch.grad(), .rtol = 1e-6, .atol = 1e-6);
  RV_EXPECT_CLOSE(sum_to_shape(x0.cuda(), {1, 197, 1}).cpu(), sum_to_shape(x0, {1, 197, 1}), .rtol = 1e-6, .atol = 1e-6);
}

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  bool exact;      // IEEE-exact on both sides: bit for bit
  bool positive;   // needs x > 0 for finite gradients (log, sqrt, rsqrt, pow 0.5)
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, true, false},
      {"exp", [](const Tensor& x) { return exp(x); }, false, false},
      {"log", [](const Tensor& x) { return log(x); }, false, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, true, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, true, true},
      {"abs", [](const Tensor& x) { return abs(x); }, true, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, false, false},
      {"add 0.3", [](const Tensor& x) { return add(x, 0.3); }, true, false},
      {"mul -1.7", [](const Tensor& x) { return mul(x, -1.7); }, true, false},
      {"2.5 - x", [](const Tensor& x) { return sub(2.5, x); }, true, false},
      {"2.5 / x", [](const Tensor& x) { return div(2.5, x); }, true, true},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, true, false},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, false, true},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, false, false},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, true, false},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.25); }, true, false},
      {"clamp lo", [](const Tensor& x) { return clamp(x, 0.1, std::nullopt); }, true, false},
      {"clamp hi", [](const Tensor& x) { return clamp(x, std::nullopt, -0.2); }, true, false},
  };
}

test::Tol unary_grad_tol(bool exact, DType dt) {
  if (exact) return {0, 0};
  return dt == DType::f64 ? test::Tol{1e-12, 1e-15} : test::Tol{1e-5, 1e-7};
}

test::Tol unary_tol(bool exact, DType dt) {
  if (dt == DType::bf16) return exact ? test::Tol{0, 0} : test::Tol{8e-3, 1e-6};
  if (exact) return {0, 0};
  return dt == DType::f64 ? test::Tol{1e-13, 1e-15} : test::Tol{2e-6, 1e-7};
}

}  // namespace

TEST_CASE("unary and scalar ops on cuda match the CPU: lengths 1..4097, non-contiguous, f32/f64/bf16") {
  for (const UnaryCase& u : unary_cases()) {
    for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
      for (int64_t n : {int64_t(1), int64_t(7), int64_t(197), int64_t(1000), int64_t(4097)}) {
        CAPTURE(u.name);
        CAPTURE(dtype_name(dt));
        CAPTURE(n);
        const Tensor x = test::test_tensor({n}, 8, DType::f32, u.positive ? 0.1 : -2.0, 2.0).to(dt);
        const Tensor got = u.f(x.cuda());
        CHECK(got.device() == kDev);
        CHECK(got.dtype() == dt);
        const test::Tol tol = unary_tol(u.exact, dt);
        RV_EXPECT_CLOSE(got.cpu(), u.f(x), .rtol = tol.rtol, .atol = tol.atol);
      }
      // A transposed view (the strided kernel) and an offset slice (the unaligned flat kernel).
      const Tensor m = test::test_tensor({37, 41}, 9, DType::f32, u.positive ? 0.1 : -2.0, 2.0).to(dt);
      const test::Tol tol = unary_tol(u.exact, dt);
      RV_EXPECT_CLOSE(u.f(m.cuda().t()).cpu(), u.f(m.t()), .rtol = tol.rtol, .atol = tol.atol);
      RV_EXPECT_CLOSE(u.f(m.cuda().reshape({37 * 41}).slice(0, 1, 37 * 41)).cpu(),
                      u.f(m.reshape({37 * 41}).slice(0, 1, 37 * 41)), .rtol = tol.rtol, .atol = tol.atol);
      CHECK(u.f(empty({0, 3}, dt, kDev)).shape() == Shape{0, 3});
    }
  }
}

TEST_CASE("unary ops on cuda: special values (0, -0, +-inf, NaN, tiny, huge) as on the CPU") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> vals = {0.0, -0.0, inf, -inf, nan, 1e-30, -1e-30, 1e30, -1.0, 1.0, 88.0, -104.0};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = from_vector(vals, {int64_t(vals.size())}, dt);
    for (const UnaryCase& u : unary_cases()) {
      CAPTURE(u.name);
      CAPTURE(dtype_name(dt));
      const test::Tol tol = unary_tol(u.exact, dt);
      RV_EXPECT_CLOSE(u.f(x.cuda()).cpu(), u.f(x), .rtol = tol.rtol, .atol = tol.atol);
    }
  }
}

TEST_CASE("unary ops' gradients on cuda match the CPU's (autograd on the device)") {
  for (const UnaryCase& u : unary_cases()) {
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(u.name);
      CAPTURE(dtype_name(dt));
      // Values away from the kinks of abs / clamp, so the gradient is well defined everywhere.
      const Tensor x0 = test::test_tensor({7, 197}, 10, DType::f32, u.positive ? 0.1 : -2.0, 2.0).to(dt);
      const Tensor w = test::test_tensor({7, 197}, 11, DType::f32).to(dt);
      Tensor xd = x0.cuda().requires_grad_();
      sum(mul(u.f(xd), w.cuda())).backward();
      Tensor xh = x0.clone().requires_grad_();
      sum(mul(u.f(xh), w)).backward();
      REQUIRE(xd.grad().defined());
      CHECK(xd.grad().device() == kDev);
      const test::Tol tol = unary_grad_tol(u.exact, dt);
      RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = tol.rtol, .atol = tol.atol);
    }
  }
}

TEST_CASE("ops without a cuda kernel or dtype fail loudly") {
  const Tensor xi = zeros({4}, DType::i64, kDev);
  CHECK_THROWS_WITH_AS(exp(xi), doctest::Contains("is not implemented on cuda:0"), std::runtime_error);
  const Tensor a = test::test_tensor({3}, 12).cuda(), b = test::test_tensor({3}, 13);
  CHECK_THROWS_AS(add(a, b), std::invalid_argument);  // different devices
}
