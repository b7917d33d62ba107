// Elementwise math (exp, log, ..., pow, clamp), where, maximum/minimum and comparisons against
// plain loops over doubles: dense, non-contiguous, broadcast, 0-d and empty inputs, bf16, and
// the gradients at the special points (ties, clamp bounds, abs at 0, 0^0) plus error messages.
#include <cmath>
#include <functional>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"
#include "tests/support/ref_loops.h"

using namespace rv;
using test::ref_broadcast;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// exact comparison for RV_EXPECT_CLOSE: .rtol = 0, .atol = 1e-300 (a zero budget would be 0/0)

// Expected tensor from a reference computed in `float` (as the f32 kernel does), then stored
// in `dt`: for bf16 this is the single rounding the op does.
Tensor expect_unary_f32(const Tensor& x, const std::function<float(float)>& f, DType dt) {
  std::vector<double> v = x.to_double_vector();
  for (double& e : v) e = double(f(float(e)));
  return from_vector(v, x.shape(), dt);
}

Tensor expect_unary_f64(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> v = x.to_double_vector();
  for (double& e : v) e = f(e);
  return from_vector(v, x.shape(), DType::f64);
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<float(float)> ref32;
  std::function<double(double)> ref64;
  double lo, hi;  // input domain
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"exp", [](const Tensor& x) { return rv::exp(x); }, [](float v) { return std::exp(v); },
       [](double v) { return std::exp(v); }, -3, 3},
      {"log", [](const Tensor& x) { return rv::log(x); }, [](float v) { return std::log(v); },
       [](double v) { return std::log(v); }, 0.01, 5},
      {"sqrt", [](const Tensor& x) { return rv::sqrt(x); }, [](float v) { return std::sqrt(v); },
       [](double v) { return std::sqrt(v); }, 0, 5},
      {"rsqrt", [](const Tensor& x) { return rv::rsqrt(x); }, [](float v) { return 1.0f / std::sqrt(v); },
       [](double v) { return 1.0 / std::sqrt(v); }, 0.01, 5},
      {"abs", [](const Tensor& x) { return rv::abs(x); }, [](float v) { return std::fabs(v); },
       [](double v) { return std::fabs(v); }, -2, 2},
      {"tanh", [](const Tensor& x) { return rv::tanh(x); }, [](float v) { return std::tanh(v); },
       [](double v) { return std::tanh(v); }, -4, 4},
      {"pow 3", [](const Tensor& x) { return rv::pow(x, 3.0); }, [](float v) { return std::pow(v, 3.0f); },
       [](double v) { return std::pow(v, 3.0); }, -2, 2},
      {"pow 2", [](const Tensor& x) { return rv::pow(x, 2.0); }, [](float v) { return v * v; },
       [](double v) { return v * v; }, -2, 2},
      {"pow -0.5", [](const Tensor& x) { return rv::pow(x, -0.5); }, [](float v) { return std::pow(v, -0.5f); },
       [](double v) { return std::pow(v, -0.5); }, 0.1, 3},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.3, 0.4); },
       [](float v) { return std::min(std::max(v, -0.3f), 0.4f); },
       [](double v) { return std::min(std::max(v, -0.3), 0.4); }, -1, 1},
  };
}

}  // namespace

TEST_CASE("unary math functions match std:: on dense, strided, f64, bf16, 0-d and empty inputs") {
  for (const UnaryCase& c : unary_cases()) {
    CAPTURE(c.name);
    Tensor x = test::test_tensor({5, 7}, 11, DType::f32, c.lo, c.hi);
    RV_EXPECT_CLOSE(c.op(x), expect_unary_f32(x, c.ref32, DType::f32), .rtol = 1e-6, .atol = 1e-7);
    // transposed storage: the kernel must honour strides
    Tensor xt = test::test_tensor({7, 5}, 12, DType::f32, c.lo, c.hi).t();
    REQUIRE(!xt.is_contiguous());
    RV_EXPECT_CLOSE(c.op(xt), expect_unary_f32(xt, c.ref32, DType::f32), .rtol = 1e-6, .atol = 1e-7);
    Tensor x64 = test::test_tensor({3, 1, 4}, 13, DType::f64, c.lo, c.hi);
    RV_EXPECT_CLOSE(c.op(x64), expect_unary_f64(x64, c.ref64), .rtol = 1e-14, .atol = 1e-15);
    // bf16: widened to f32, computed, rounded once
    Tensor xb = test::test_tensor({4, 6}, 14, DType::bf16, c.lo, c.hi);
    Tensor yb = c.op(xb);
    CHECK(yb.dtype() == DType::bf16);
    RV_EXPECT_CLOSE(yb, expect_unary_f32(xb, c.ref32, DType::bf16), .rtol = 1e-12, .atol = 1e-30);
    Tensor s = scalar_tensor(0.5 * (c.lo + c.hi) + 0.25, DType::f64);
    CHECK(c.op(s).dim() == 0);
    CHECK(c.op(s).item() == doctest::Approx(c.ref64(s.item())).epsilon(1e-14));
    CHECK(c.op(empty({0, 3})).shape() == Shape{0, 3});
  }
}

TEST_CASE("special values: log/sqrt of 0 and negatives, abs of -0, tanh saturation") {
  Tensor x = from_vector(std::vector<double>{0.0, -1.0, INFINITY, -0.0}, {4}, DType::f64);
  std::vector<double> l = rv::log(x).to_vector<double>();
  CHECK(l[0] == -INFINITY);
  CHECK(std::isnan(l[1]));
  CHECK(l[2] == INFINITY);
  std::vector<double> s = rv::sqrt(x).to_vector<double>();
  CHECK(s[0] == 0.0);
  CHECK(std::isnan(s[1]));
  CHECK(rv::rsqrt(x).to_vector<double>()[0] == INFINITY);
  CHECK(!std::signbit(rv::abs(x).to_vector<double>()[3]));
  CHECK(rv::tanh(from_vector(std::vector<double>{50.0, -50.0}, {2}, DType::f64)).to_vector<double>() ==
        std::vector<double>{1.0, -1.0});
}

TEST_CASE("pow with a tensor exponent broadcasts and matches std::pow") {
  Tensor x = test::test_tensor({4, 1, 5}, 21, DType::f32, 0.1, 3.0);
  Tensor e = test::test_noncontiguous({3, 5}, 22);  // [-1, 1], strided
  Tensor y = rv::pow(x, e);
  REQUIRE(y.shape() == Shape{4, 3, 5});
  std::vector<double> xa = ref_broadcast(x, y.shape()), ea = ref_broadcast(e, y.shape());
  std::vector<double> ref(xa.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = std::pow(float(xa[i]), float(ea[i]));
  RV_EXPECT_CLOSE(y, from_vector(ref, y.shape(), DType::f32), .rtol = 1e-6, .atol = 1e-7);
  // f64 with f32 promotes to f64
  Tensor y64 = rv::pow(x.to(DType::f64), e);
  CHECK(y64.dtype() == DType::f64);
  CHECK_THROWS_WITH(rv::pow(x, ones({4})), doctest::Contains("pow: shapes [4, 1, 5] and [4] do not broadcast"));
}

TEST_CASE("pow gradients at the special points follow PyTorch") {
  // pow(x, 0): gradient exactly 0 even at x = 0
  Tensor x = from_vector(std::vector<double>{0.0, -1.0, 2.0}, {3}, DType::f64).requires_grad_();
  sum(rv::pow(x, 0.0)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0});
  // pow(x, e) with tensor e: d/dx masked where e == 0, d/de masked where x == 0 and e >= 0
  Tensor b = from_vector(std::vector<double>{0.0, 0.0, 2.0}, {3}, DType::f64).requires_grad_();
  Tensor e = from_vector(std::vector<double>{0.0, 2.0, 0.0}, {3}, DType::f64).requires_grad_();
  sum(rv::pow(b, e)).backward();
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 0, 0});
  std::vector<double> ge = e.grad().to_vector<double>();
  CHECK(ge[0] == 0.0);
  CHECK(ge[1] == 0.0);
  CHECK(ge[2] == doctest::Approx(std::log(2.0)));
}

TEST_CASE("clamp: one-sided, NaN passes, min > max gives max, gradient inclusive at the bounds") {
  Tensor x = from_vector(std::vector<double>{-2, -1, 0, 1, 2, kNaN}, {6}, DType::f64);
  std::vector<double> lo = clamp(x, -1.0, std::nullopt).to_vector<double>();
  CHECK(lo[0] == -1);
  CHECK(lo[4] == 2);
  CHECK(std::isnan(lo[5]));
  std::vector<double> hi = clamp(x, std::nullopt, 0.5).to_vector<double>();
  CHECK(hi[0] == -2);
  CHECK(hi[4] == 0.5);
  std::vector<double> inv = clamp(x, 1.0, -1.0).to_vector<double>();
  CHECK(inv[0] == -1);
  CHECK(inv[4] == -1);
  CHECK_THROWS_WITH(clamp(x, std::nullopt, std::nullopt), "clamp: at least one of min and max must be given");
  Tensor xg = x.detach().clone().requires_grad_();
  sum(clamp(xg, -1.0, 1.0)).backward();
  // -2 outside, -1 and 1 on the bounds (pass), 0 inside, 2 outside, NaN gets 0
  CHECK(xg.grad().to_vector<double>() == std::vector<double>{0, 1, 1, 1, 0, 0});
}

TEST_CASE("abs gradient is 0 at 0, sign elsewhere") {
  Tensor x = from_vector(std::vector<double>{-3, 0, 2}, {3}, DType::f64).requires_grad_();
  sum(rv::abs(x)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{-1, 0, 1});
}

TEST_CASE("where broadcasts cond, a and b; keeps bf16 exact; promotes mixed float dtypes") {
  Tensor cond = gt(test::test_tensor({3, 1, 4}, 31), 0.0);
  Tensor a = test::test_noncontiguous({2, 4}, 32);
  Tensor b = test::test_tensor({3, 2, 1}, 33);
  Tensor y = where(cond, a, b);
  REQUIRE(y.shape() == Shape{3, 2, 4});
  std::vector<double> c = ref_broadcast(cond, y.shape()), av = ref_broadcast(a, y.shape()),
                      bv = ref_broadcast(b, y.shape());
  std::vector<double> ref(c.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = c[i] != 0 ? av[i] : bv[i];
  RV_EXPECT_CLOSE(y, from_vector(ref, y.shape(), DType::f32), .rtol = 0, .atol = 1e-300);
  Tensor yb = where(cond, a.to(DType::bf16), b.to(DType::bf16));
  CHECK(yb.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(yb, y.to(DType::bf16), .rtol = 0, .atol = 1e-300);
  CHECK(where(cond, a, b.to(DType::f64)).dtype() == DType::f64);
  // gradients: a gets g where cond, b where !cond, each summed back to its own shape
  Tensor ag = a.detach().clone().requires_grad_(), bg = b.detach().clone().requires_grad_();
  sum(where(cond, ag, bg)).backward();
  std::vector<double> ga(8, 0.0), gb(6, 0.0);
  for (int64_t i = 0; i < 24; ++i) {
    auto idx = test::multi_index(i, {3, 2, 4});
    if (c[i] != 0)
      ga[idx[1] * 4 + idx[2]] += 1;
    else
      gb[idx[0] * 2 + idx[1]] += 1;
  }
  RV_EXPECT_CLOSE(ag.grad(), from_vector(ga, {2, 4}, DType::f32), .rtol = 0, .atol = 1e-300);
  RV_EXPECT_CLOSE(bg.grad(), from_vector(gb, {3, 2, 1}, DType::f32), .rtol = 0, .atol = 1e-300);
  CHECK_THROWS_WITH(where(a, a, b), "where: expected cond to be a bool tensor, got float32");
  CHECK_THROWS_WITH(where(cond, a, ones({5})), doctest::Contains("where: shapes"));
}

TEST_CASE("maximum / minimum broadcast, propagate NaN, and split the gradient on ties") {
  Tensor a = test::test_noncontiguous({4, 3}, 41);
  Tensor b = test::test_tensor({3}, 42);
  Tensor mx = maximum(a, b), mn = minimum(a, b);
  std::vector<double> av = ref_broadcast(a, {4, 3}), bv = ref_broadcast(b, {4, 3});
  std::vector<double> rmx(12), rmn(12);
  for (int i = 0; i < 12; ++i) {
    rmx[i] = std::max(av[i], bv[i]);
    rmn[i] = std::min(av[i], bv[i]);
  }
  RV_EXPECT_CLOSE(mx, from_vector(rmx, {4, 3}), .rtol = 0, .atol = 1e-300);
  RV_EXPECT_CLOSE(mn, from_vector(rmn, {4, 3}), .rtol = 0, .atol = 1e-300);
  // NaN on either side wins
  Tensor p = from_vector(std::vector<double>{kNaN, 1, 2}, {3}, DType::f64);
  Tensor q = from_vector(std::vector<double>{1, kNaN, 2}, {3}, DType::f64);
  for (const Tensor& r : {maximum(p, q), minimum(p, q), maximum(q, p)}) {
    std::vector<double> v = r.to_vector<double>();
    CHECK(std::isnan(v[0]));
    CHECK(std::isnan(v[1]));
    CHECK(v[2] == 2);
  }
  // PyTorch: a=[1,2,3], b=[1,3,2] -> grad a [0.5, 0, 1], grad b [0.5, 1, 0]
  Tensor ga = from_vector(std::vector<double>{1, 2, 3}, {3}, DType::f64).requires_grad_();
  Tensor gb = from_vector(std::vector<double>{1, 3, 2}, {3}, DType::f64).requires_grad_();
  sum(maximum(ga, gb)).backward();
  CHECK(ga.grad().to_vector<double>() == std::vector<double>{0.5, 0, 1});
  CHECK(gb.grad().to_vector<double>() == std::vector<double>{0.5, 1, 0});
  ga.zero_grad();
  gb.zero_grad();
  sum(minimum(ga, gb)).backward();
  CHECK(ga.grad().to_vector<double>() == std::vector<double>{0.5, 1, 0});
  CHECK(gb.grad().to_vector<double>() == std::vector<double>{0.5, 0, 1});
  // broadcast b gets its gradient summed: b (3) wins in column j where b[j] > a[i][j]
  Tensor bb = b.detach().clone().requires_grad_();
  sum(maximum(a, bb)).backward();
  std::vector<double> gref(3, 0.0);
  for (int i = 0; i < 12; ++i) gref[i % 3] += bv[i] > av[i] ? 1.0 : (bv[i] == av[i] ? 0.5 : 0.0);
  RV_EXPECT_CLOSE(bb.grad(), from_vector(gref, {3}), .rtol = 0, .atol = 1e-300);
  CHECK_THROWS_WITH(maximum(a, ones({2})), doctest::Contains("maximum: shapes [4, 3] and [2] do not broadcast"));
  CHECK_THROWS_WITH(minimum(arange(3), arange(3)), "minimum: expected float tensors, got int64 and int64");
}

TEST_CASE("comparisons: tensor-tensor broadcasting over mixed dtypes, and tensor-scalar") {
  Tensor a = test::test_noncontiguous({3, 4}, 51);
  Tensor b = test::test_tensor({4}, 52);
  std::vector<double> av = ref_broadcast(a, {3, 4}), bv = ref_broadcast(b, {3, 4});
  struct Cmp {
    const char* name;
    Tensor (*tt)(const Tensor&, const Tensor&);
    Tensor (*ts)(const Tensor&, double);
    bool (*ref)(double, double);
  };
  const Cmp cmps[] = {
      {"eq", eq, eq, [](double p, double q) { return p == q; }},
      {"ne", ne, ne, [](double p, double q) { return p != q; }},
      {"lt", lt, lt, [](double p, double q) { return p < q; }},
      {"le", le, le, [](double p, double q) { return p <= q; }},
      {"gt", gt, gt, [](double p, double q) { return p > q; }},
      {"ge", ge, ge, [](double p, double q) { return p >= q; }},
  };
  Tensor a_dup = a.contiguous().narrow(1, 0, 1);  // column 0 of a, so eq has some true values
  for (const Cmp& c : cmps) {
    CAPTURE(c.name);
    Tensor m = c.tt(a, b);
    CHECK(m.dtype() == DType::boolean);
    REQUIRE(m.shape() == Shape{3, 4});
    std::vector<double> got = m.to_double_vector();
    for (int i = 0; i < 12; ++i) CHECK(got[i] == double(c.ref(av[i], bv[i])));
    // against itself broadcast: equality holds in column 0
    std::vector<double> self = c.tt(a, a_dup).to_double_vector();
    std::vector<double> dv = ref_broadcast(a_dup, {3, 4});
    for (int i = 0; i < 12; ++i) CHECK(self[i] == double(c.ref(av[i], dv[i])));
    // tensor-scalar
    std::vector<double> s = c.ts(a, 0.25).to_double_vector();
    for (int i = 0; i < 12; ++i) CHECK(s[i] == double(c.ref(av[i], double(float(0.25)))));
    // integer tensor against an int tensor, a float tensor and a fractional scalar
    Tensor ia = arange(6).reshape({2, 3}), ib = from_vector(std::vector<int64_t>{1, 4, 2}, {3});
    std::vector<double> ii = c.tt(ia, ib).to_double_vector();
    const double ibv[3] = {1, 4, 2};
    for (int i = 0; i < 6; ++i) CHECK(ii[i] == double(c.ref(double(i), ibv[i % 3])));
    std::vector<double> is = c.ts(ia, 2.5).to_double_vector();
    for (int i = 0; i < 6; ++i) CHECK(is[i] == double(c.ref(double(i), 2.5)));
    std::vector<double> fi = c.tt(ia, full({3}, 2.0)).to_double_vector();
    for (int i = 0; i < 6; ++i) CHECK(fi[i] == double(c.ref(double(i), 2.0)));
  }
  // NaN is unordered: only ne is true
  Tensor n = scalar_tensor(kNaN);
  CHECK(eq(n, n).item() == 0);
  CHECK(ne(n, n).item() == 1);
  CHECK(lt(n, 0.0).item() == 0);
  CHECK(ge(n, 0.0).item() == 0);
  // a bf16 tensor compares with the scalar rounded to bf16, as PyTorch: bf16(0.1) == 0.1
  Tensor xb = full({1}, 0.1, DType::bf16);
  CHECK(eq(xb, 0.1).item() == 1);
  CHECK(lt(xb, 0.1).item() == 0);
  CHECK(eq(full({1}, 0.1, DType::f32), 0.1).item() == 1);  // f32 likewise
  CHECK(eq(full({1}, 0.1, DType::f64), full({1}, 0.1, DType::f32)).item() == 0);  // promoted: f64 vs f32(0.1)
  CHECK_THROWS_WITH(lt(a, ones({5})), doctest::Contains("lt: shapes [3, 4] and [5] do not broadcast"));
  CHECK(eq(empty({0, 4}), b).shape() == Shape{0, 4});
}

TEST_CASE("logical_not on bool, float and integer tensors") {
  Tensor m = gt(from_vector(std::vector<double>{-1, 0, 2}, {3}), 0.0);
  CHECK(logical_not(m).to_double_vector() == std::vector<double>{1, 1, 0});
  CHECK(logical_not(from_vector(std::vector<double>{0, 0.5, -0.0}, {3})).to_double_vector() ==
        std::vector<double>{1, 0, 1});
  Tensor li = logical_not(from_vector(std::vector<int64_t>{0, 3, -1}, {3}));
  CHECK(li.dtype() == DType::boolean);
  CHECK(li.to_double_vector() == std::vector<double>{1, 0, 0});
}

TEST_CASE("comparisons are not differentiable; float math on integers is refused by name") {
  Tensor x = ones({2}).requires_grad_();
  CHECK(!gt(x, 0.0).requires_grad());
  CHECK_THROWS_WITH(rv::exp(arange(3)), "exp: expected a float tensor, got int64");
  CHECK_THROWS_WITH(rv::pow(arange(3), 2.0), "pow: expected a float tensor, got int64");
}

TEST_CASE("a large contiguous tensor (cut into pieces across threads) matches the loop") {
  Tensor x = test::test_tensor({300001}, 61, DType::f32, -3, 3);
  RV_EXPECT_CLOSE(rv::tanh(x), expect_unary_f32(x, [](float v) { return std::tanh(v); }, DType::f32), .rtol = 0,
                  .atol = 1e-300);
  Tensor b = test::test_tensor({3, 100000}, 62, DType::f32);  // rows longer than one piece, broadcast b
  Tensor r = test::test_tensor({100000}, 63, DType::f32);
  Tensor m = maximum(b, r);
  std::vector<double> bv = b.to_double_vector(), rv_ = r.to_double_vector(), want(bv.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = std::max(bv[i], rv_[i % 100000]);
  RV_EXPECT_CLOSE(m, from_vector(want, {3, 100000}), .rtol = 0, .atol = 1e-300);
}
