// test_compare_where.cpp: the comparisons (eq ... ge against a tensor or a scalar), logical_not,
// where and masked_fill on cuda, forward and backward, against the same public ops on the CPU.
// Skipped (exit 77) without a GPU.
//
// Tolerances: comparisons and selects compute nothing, so the results (bools, selected values)
// must equal the CPU's bit for bit. The gradients of where / masked_fill are selects too, then a
// sum over broadcast dims for where (sum_to_shape: the CUDA sum and the CPU's accumulate in f64
// in different orders, so rtol 1e-6 / atol 1e-7 for f32; exact when nothing is broadcast).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/mask.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/same_bits.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

using TensorCmp = Tensor (*)(const Tensor&, const Tensor&);
using ScalarCmp = Tensor (*)(const Tensor&, double);
struct Cmp {
  const char* name;
  TensorCmp tt;
  ScalarCmp ts;
};
const Cmp kCmps[] = {{"eq", eq, eq}, {"ne", ne, ne}, {"lt", lt, lt}, {"le", le, le}, {"gt", gt, gt}, {"ge", ge, ge}};

// Values on a coarse grid (so that equal elements occur), with NaN and infinities sprinkled in
// for float dtypes.
Tensor grid_values(const Shape& shape, uint64_t seed, DType dt) {
  Tensor x = test::test_tensor(shape, seed, DType::f64, -3.0, 3.0);
  x = mul(x.to(DType::i64).to(DType::f64), 0.5);  // multiples of 0.5 in [-1.5, 1.5]: many ties
  if (is_floating(dt) && x.numel() > 4) {
    auto flat = x.reshape({-1});
    flat.slice(0, 1, 2).fill_(std::numeric_limits<double>::quiet_NaN());
    flat.slice(0, 3, 4).fill_(std::numeric_limits<double>::infinity());
  }
  return x.to(dt);
}

}  // namespace

TEST_CASE("comparisons on cuda equal the CPU: same shape, broadcast, 0-d, empty, NaN, mixed dtypes") {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{1000}, {1000}}, {{7, 33}, {33}}, {{3, 1, 5}, {4, 1}}, {{}, {6, 5}}, {{0, 5}, {5}},
                        {{4097}, {1}}};
  const std::pair<DType, DType> dtypes[] = {{DType::f32, DType::f32}, {DType::f64, DType::f64},
                                            {DType::bf16, DType::bf16}, {DType::i64, DType::i64},
                                            {DType::f32, DType::bf16}, {DType::i32, DType::f32},
                                            {DType::u8, DType::i64},   {DType::boolean, DType::boolean}};
  for (const auto& [da, db] : dtypes) {
    for (const Case& c : cases) {
      for (const Cmp& op : kCmps) {
        CAPTURE(dtype_name(da));
        CAPTURE(dtype_name(db));
        CAPTURE(shape_str(c.a));
        CAPTURE(shape_str(c.b));
        CAPTURE(op.name);
        Tensor a = grid_values(c.a, 1, da), b = grid_values(c.b, 2, db);
        if (da == DType::u8) a = abs(grid_values(c.a, 1, DType::f32)).to(DType::u8);
        const Tensor got = op.tt(a.cuda(), b.cuda());
        CHECK(got.device() == kDev);
        RV_EXPECT_SAME_BITS(got, op.tt(a, b));
      }
    }
  }
}

TEST_CASE("comparisons with a scalar on cuda round the scalar as the CPU does") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i64, DType::i32}) {
    const Tensor x = grid_values({197}, 3, dt);
    for (double s : {0.5, 0.1, -1.0, 1.25, std::numeric_limits<double>::infinity()}) {
      for (const Cmp& op : kCmps) {
        CAPTURE(dtype_name(dt));
        CAPTURE(s);
        CAPTURE(op.name);
        RV_EXPECT_SAME_BITS(op.ts(x.cuda(), s), op.ts(x, s));
      }
    }
    RV_EXPECT_SAME_BITS(logical_not(x.cuda()), logical_not(x));
  }
  // bf16(0.1) is not 0.1: a bf16 tensor holding bf16(0.1) equals the scalar 0.1.
  const Tensor b = full({3}, 0.1, DType::bf16);
  RV_EXPECT_SAME_BITS(eq(b.cuda(), 0.1), eq(b, 0.1));
}

TEST_CASE("comparisons on cuda read non-contiguous inputs") {
  const Tensor a = grid_values({9, 14}, 4, DType::f32), b = grid_values({14, 9}, 5, DType::f32);
  for (const Cmp& op : kCmps) {
    CAPTURE(op.name);
    RV_EXPECT_SAME_BITS(op.tt(a.cuda(), b.cuda().t()), op.tt(a, b.t()));
    RV_EXPECT_SAME_BITS(op.tt(a.cuda().slice(1, 1, 14, 3), b.cuda().t().slice(1, 0, 14, 3)),
                        op.tt(a.slice(1, 1, 14, 3), b.t().slice(1, 0, 14, 3)));
  }
}

TEST_CASE("where on cuda equals the CPU: broadcasting all three, every dtype, mixed dtypes, empty") {
  struct Case {
    Shape c, a, b;
  };
  const Case cases[] = {{{1000}, {1000}, {1000}},      {{7, 33}, {33}, {7, 1}}, {{3, 1, 5}, {4, 1}, {}},
                        {{1}, {2, 3}, {2, 3}},           {{0, 5}, {5}, {1}},      {{4097}, {4097}, {}},
                        {{2, 1, 4, 1}, {1, 3, 1, 5}, {5}}};
  const std::pair<DType, DType> dtypes[] = {{DType::f32, DType::f32},   {DType::f64, DType::f64},
                                            {DType::bf16, DType::bf16}, {DType::i64, DType::i64},
                                            {DType::u8, DType::u8},     {DType::boolean, DType::boolean},
                                            {DType::f32, DType::f64},   {DType::bf16, DType::f32}};
  for (const auto& [da, db] : dtypes) {
    for (const Case& c : cases) {
      CAPTURE(dtype_name(da));
      CAPTURE(dtype_name(db));
      CAPTURE(shape_str(c.c));
      const Tensor cond = gt(test::test_tensor(c.c, 7), 0.0);
      const Tensor a = grid_values(c.a, 8, da), b = grid_values(c.b, 9, db);
      const Tensor got = where(cond.cuda(), a.cuda(), b.cuda());
      CHECK(got.device() == kDev);
      RV_EXPECT_SAME_BITS(got, where(cond, a, b));
    }
  }
  // non-contiguous operands
  const Tensor cond = gt(test::test_tensor({14, 9}, 10), 0.0);
  const Tensor a = test::test_tensor({9, 14}, 11), b = test::test_tensor({14, 9}, 12);
  RV_EXPECT_SAME_BITS(where(cond.cuda().t(), a.cuda(), b.cuda().t()), where(cond.t(), a, b.t()));
  // stepped views: four columns each (1, 5, 9, 13 and 0, 4, 8, 12)
  const Tensor dc = cond.cuda().t().slice(1, 1, 14, 4), da = a.cuda().slice(1, 0, 14, 4);
  const Tensor db = b.cuda().t().slice(1, 1, 14, 4);
  RV_EXPECT_SAME_BITS(where(dc, da, db),
                      where(cond.t().slice(1, 1, 14, 4), a.slice(1, 0, 14, 4), b.t().slice(1, 1, 14, 4)));
}

TEST_CASE("where on cuda: gradients of a and b through autograd, broadcast operands summed back") {
  for (DType dt : {DType::f32, DType::f64}) {  // (mul, used for the loss, is f32 / f64 on cuda)
    CAPTURE(dtype_name(dt));
    const Tensor cond = gt(test::test_tensor({5, 7, 33}, 13), 0.2);
    const Tensor a0 = test::test_tensor({7, 33}, 14, dt), b0 = test::test_tensor({5, 1, 33}, 15, dt);
    const Tensor w = test::test_tensor({5, 7, 33}, 16, dt);
    Tensor a = a0.cuda().requires_grad_(), b = b0.cuda().requires_grad_();
    sum(mul(where(cond.cuda(), a, b), w.cuda())).backward();
    Tensor ah = a0.clone().requires_grad_(), bh = b0.clone().requires_grad_();
    sum(mul(where(cond, ah, bh), w)).backward();
    REQUIRE(a.grad().defined());
    REQUIRE(b.grad().defined());
    CHECK(a.grad().device() == kDev);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
    RV_EXPECT_CLOSE(a.grad().cpu(), ah.grad(), .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(b.grad().cpu(), bh.grad(), .rtol = tol, .atol = tol);
  }
}

TEST_CASE("masked_fill on cuda equals the CPU: broadcast masks, every float dtype, -inf, non-contiguous x") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64}) {
    for (double v : {-inf, 0.1, -3.0}) {
      if (dt == DType::i64 && std::isinf(v)) continue;
      CAPTURE(dtype_name(dt));
      CAPTURE(v);
      const Tensor x = grid_values({2, 3, 197}, 17, dt);
      for (const Shape& ms : {Shape{2, 3, 197}, Shape{197}, Shape{3, 1}, Shape{}}) {
        const Tensor m = gt(test::test_tensor(ms, 18), 0.0);
        CAPTURE(shape_str(ms));
        RV_EXPECT_SAME_BITS(masked_fill(x.cuda(), m.cuda(), v), masked_fill(x, m, v));
      }
      const Tensor mt = gt(test::test_tensor({197, 3}, 19), 0.0);  // x read through a transposed view
      RV_EXPECT_SAME_BITS(masked_fill(x.cuda().transpose(1, 2), mt.cuda(), v), masked_fill(x.transpose(1, 2), mt, v));
    }
  }
  const Tensor e = zeros({0, 4});
  CHECK(masked_fill(e.cuda(), gt(zeros({4}), 0.0).cuda(), 1.0).shape() == Shape{0, 4});
}

TEST_CASE("masked_fill on cuda: the gradient is zero where filled, computed on cuda") {
  const Tensor x0 = test::test_tensor({4, 1000}, 20);
  const Tensor m = gt(test::test_tensor({1000}, 21), 0.3), w = test::test_tensor({4, 1000}, 22);
  Tensor x = x0.cuda().requires_grad_();
  sum(mul(masked_fill(x, m.cuda(), -1e9), w.cuda())).backward();
  Tensor xh = x0.clone().requires_grad_();
  sum(mul(masked_fill(xh, m, -1e9), w)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == kDev);
  RV_EXPECT_SAME_BITS(x.grad(), xh.grad());
}

TEST_CASE("comparisons, where and masked_fill refuse inputs on different devices") {
  const Tensor a = zeros({3}), b = zeros({3}, DType::f32, kDev);
  CHECK_THROWS_WITH_AS(lt(a, b), doctest::Contains("move one with .to(device)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(where(gt(a, 0.0), a, b), doctest::Contains("all three must be on one device"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(masked_fill(b, gt(a, 0.0), 1.0), doctest::Contains("masked_fill: mask on cpu"),
                       std::invalid_argument);
}
