// test_matmul.cpp: the CUDA fp32 GEMM (hand-written kernels and cuBLAS) against the CPU matmul and
// linear: odd shapes, K = 0, transposed and non-contiguous views, broadcast batch dims, bias and
// GELU epilogues, gradients through autograd on cuda, the bias-gradient column sum, determinism.
// Skipped (exit 77) without a GPU.
//
// Tolerance of a GEMM output element (i, j): |got - want| <= 2e-5 * sum_k |a_ik| |b_kj| (+1e-30).
// Both sides round each of K products and partial sums in f32 in different orders; the error of
// either is a few ulp of the sum of magnitudes (~sqrt(K) * 6e-8 typically), so 2e-5 of that sum
// is loose enough for K <= 4096 and still catches any wrong index (an error of one whole term).
// Gradients (sums of GEMMs) use rtol 1e-4 with atol 1e-5 * K (inputs are in [-1, 1]); the
// epilogue checks rtol = atol = 1e-5 * sqrt(K / 96) (the GEMM error grows like sqrt(K)).
// The column sum accumulates in f64 like the CPU sum: rtol 1e-6.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;
using Impl = backend::DeviceBackend::MatmulImpl;

namespace {

const Device kDev = cuda_device(0);
const Impl kImpls[] = {Impl::ours, Impl::simple, Impl::blocked, Impl::cublas};

const char* impl_name(Impl i) {
  switch (i) {
    case Impl::ours: return "ours";
    case Impl::simple: return "simple";
    case Impl::blocked: return "blocked";
    case Impl::cublas: return "cublas";
  }
  return "?";
}

// Sets the backend's impl for a scope and restores the previous one.
struct ImplGuard {
  Impl prev;
  explicit ImplGuard(Impl i) : prev(backend::get(kDev).matmul_impl()) { backend::get(kDev).set_matmul_impl(i); }
  ~ImplGuard() { backend::get(kDev).set_matmul_impl(prev); }
};

// got (device) vs want (CPU), element by element within 2e-5 * bound (bound = |a|·|b| on the CPU in f64).
void expect_gemm_close(const Tensor& got, const Tensor& want, const Tensor& bound) {
  REQUIRE(got.device() == kDev);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(bound.shape() == want.shape());
  const std::vector<double> g = got.cpu().to_double_vector(), w = want.to_double_vector(),
                            b = bound.to_double_vector();
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!(std::abs(g[i] - w[i]) <= 2e-5 * b[i] + 1e-30)) {
      if (bad++ == 0) first = i;
    }
  }
  std::string report;
  if (bad)
    report = std::to_string(bad) + " elements off; first at flat index " + std::to_string(first) + ": got " +
             std::to_string(g[first]) + ", want " + std::to_string(w[first]) + ", bound " + std::to_string(b[first]);
  CHECK_MESSAGE(bad == 0, report);
}

Tensor abs_product(const Tensor& a, const Tensor& b) { return matmul(abs(a.to(DType::f64)), abs(b.to(DType::f64))); }

}  // namespace

TEST_CASE("gemm forward on cuda equals the CPU matmul: odd shapes, K = 0, transposed views, every impl") {
  struct Case {
    int64_t M, K, N;
  };
  // Multiples of 4 in every dim ({132, 64, 136}, {260, 20, 132}, {197, 384, 1152} for NN) take the
  // blocked kernel's float4 loads; the others its scalar loads. 132 / 136 / 260 leave partial tiles.
  const Case cases[] = {{1, 1, 1},      {7, 5, 3},      {129, 65, 33}, {197, 384, 1152},
                        {3, 0, 4},      {1, 1000, 1},   {300, 7, 260}, {132, 64, 136},
                        {260, 20, 132}, {64, 4097, 8},  {40, 9000, 36}};  // the last two: split-K under "ours"
  for (Impl impl : kImpls) {
    ImplGuard ig(impl);
    for (const Case& c : cases) {
      for (int ta = 0; ta < 2; ++ta) {
        for (int tb = 0; tb < 2; ++tb) {
          CAPTURE(impl_name(impl));
          CAPTURE(c.M);
          CAPTURE(c.K);
          CAPTURE(c.N);
          CAPTURE(ta);
          CAPTURE(tb);
          // a (M, K) and b (K, N), possibly as transposed views of (K, M) / (N, K) storage.
          const Tensor a = ta ? test::test_tensor({c.K, c.M}, 1).t() : test::test_tensor({c.M, c.K}, 1);
          const Tensor b = tb ? test::test_tensor({c.N, c.K}, 2).t() : test::test_tensor({c.K, c.N}, 2);
          const Tensor da = ta ? test::test_tensor({c.K, c.M}, 1).cuda().t() : a.cuda();
          const Tensor db = tb ? test::test_tensor({c.N, c.K}, 2).cuda().t() : b.cuda();
          expect_gemm_close(matmul(da, db), matmul(a, b), abs_product(a, b));
        }
      }
    }
  }
}

TEST_CASE("matmul on cuda: broadcast batch dims, stacked rows, stepped views; same bits twice") {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{2, 3, 17, 19}, {3, 19, 23}},  // broadcast batch
      {{3, 1, 5, 6}, {4, 6, 2}},      // both broadcast: (3, 4) batch
      {{4, 33, 40}, {40, 31}},        // stacked rows: one (132, 40) x (40, 31) product
      {{2, 0, 5}, {5, 3}},            // empty
  };
  for (Impl impl : kImpls) {
    ImplGuard ig(impl);
    for (const Case& c : cases) {
      CAPTURE(impl_name(impl));
      CAPTURE(shape_str(c.a));
      CAPTURE(shape_str(c.b));
      const Tensor a = test::test_tensor(c.a, 3), b = test::test_tensor(c.b, 4);
      const Tensor got = matmul(a.cuda(), b.cuda());
      expect_gemm_close(got, matmul(a, b), abs_product(a, b));
      CHECK(matmul(a.cuda(), b.cuda()).cpu().to_double_vector() == got.cpu().to_double_vector());
    }
    // A non-contiguous operand that is neither plain nor transposed (a column step): copied first.
    const Tensor a = test::test_tensor({9, 40}, 5).slice(1, 0, 40, 2), b = test::test_noncontiguous({20, 11}, 6);
    const Tensor da = test::test_tensor({9, 40}, 5).cuda().slice(1, 0, 40, 2), db = b.cuda();
    expect_gemm_close(matmul(da, db), matmul(a, b), abs_product(a, b));
  }
}

TEST_CASE("matmul gradients through autograd on cuda equal the CPU's") {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{7, 5}, {5, 3}}, {{2, 3, 17, 19}, {3, 19, 23}}, {{4, 33, 40}, {40, 31}}, {{3, 1, 5, 6}, {4, 6, 2}}};
  for (Impl impl : {Impl::ours, Impl::cublas}) {
    ImplGuard ig(impl);
    for (const Case& c : cases) {
      CAPTURE(impl_name(impl));
      CAPTURE(shape_str(c.a));
      CAPTURE(shape_str(c.b));
      const Tensor a0 = test::test_tensor(c.a, 7), b0 = test::test_tensor(c.b, 8);
      Tensor ah = a0.clone().requires_grad_(), bh = b0.clone().requires_grad_();
      Tensor ad = a0.cuda().requires_grad_(), bd = b0.cuda().requires_grad_();
      const Tensor wh = test::test_tensor(matmul(a0, b0).shape(), 9);  // a fixed upstream gradient
      sum(mul(matmul(ah, bh), wh)).backward();
      sum(mul(matmul(ad, bd), wh.cuda())).backward();
      REQUIRE(ad.grad().defined());
      REQUIRE(bd.grad().defined());
      CHECK(ad.grad().device() == kDev);
      const double K = double(c.a.back());
      const double atol = 1e-5 * std::max(K, double(shape_numel(c.a)));
      RV_EXPECT_CLOSE(ad.grad().cpu(), ah.grad(), .rtol = 1e-4, .atol = atol);
      RV_EXPECT_CLOSE(bd.grad().cpu(), bh.grad(), .rtol = 1e-4, .atol = atol);
    }
  }
}

TEST_CASE("linear on cuda with and without bias, forward and backward, equals the CPU") {
  for (Impl impl : kImpls) {
    ImplGuard ig(impl);
    for (bool with_bias : {false, true}) {
      for (bool noncontig : {false, true}) {
        CAPTURE(impl_name(impl));
        CAPTURE(with_bias);
        CAPTURE(noncontig);
        const Tensor x0 = noncontig ? test::test_noncontiguous({2, 7, 33}, 10) : test::test_tensor({2, 7, 33}, 10);
        const Tensor w0 = test::test_tensor({65, 33}, 11), b0 = test::test_tensor({65}, 12);
        const Tensor g0 = test::test_tensor({2, 7, 65}, 13);
        Tensor xh = x0.clone().requires_grad_(), wh = w0.clone().requires_grad_(), bh = b0.clone().requires_grad_();
        Tensor xd = x0.cuda().requires_grad_(), wd = w0.cuda().requires_grad_(), bd = b0.cuda().requires_grad_();
        const Tensor yh = linear(xh, wh, with_bias ? bh : Tensor());
        const Tensor yd = linear(xd, wd, with_bias ? bd : Tensor());
        CHECK(yd.shape() == yh.shape());
        RV_EXPECT_CLOSE(yd.cpu(), yh.detach(), .rtol = 1e-5, .atol = 1e-5);
        sum(mul(yh, g0)).backward();
        sum(mul(yd, g0.cuda())).backward();
        RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = 1e-4, .atol = 1e-4);
        RV_EXPECT_CLOSE(wd.grad().cpu(), wh.grad(), .rtol = 1e-4, .atol = 1e-4);
        if (with_bias) {
          CHECK(bd.grad().device() == kDev);
          RV_EXPECT_CLOSE(bd.grad().cpu(), bh.grad(), .rtol = 1e-5, .atol = 1e-6);
        }
      }
    }
  }
  // 4200 rows: the weight gradient (65, 33) = gᵀ x has K = 4200 and takes split-K under "ours".
  for (Impl impl : {Impl::ours, Impl::cublas}) {
    ImplGuard ig(impl);
    CAPTURE(impl_name(impl));
    const Tensor x0 = test::test_tensor({2, 2100, 36}, 23), w0 = test::test_tensor({64, 36}, 24);
    const Tensor b0 = test::test_tensor({64}, 25), g0 = test::test_tensor({2, 2100, 64}, 26);
    Tensor xh = x0.clone().requires_grad_(), wh = w0.clone().requires_grad_(), bh = b0.clone().requires_grad_();
    Tensor xd = x0.cuda().requires_grad_(), wd = w0.cuda().requires_grad_(), bd = b0.cuda().requires_grad_();
    sum(mul(linear(xh, wh, bh), g0)).backward();
    sum(mul(linear(xd, wd, bd), g0.cuda())).backward();
    RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = 1e-4, .atol = 1e-4);
    RV_EXPECT_CLOSE(wd.grad().cpu(), wh.grad(), .rtol = 1e-4, .atol = 1e-5 * 4200);
    RV_EXPECT_CLOSE(bd.grad().cpu(), bh.grad(), .rtol = 1e-5, .atol = 1e-5);
  }
  // in_features = 0: the output is the bias (or zeros) broadcast over the rows.
  const Tensor x = zeros({3, 0}), w = zeros({4, 0}), b = test::test_tensor({4}, 14);
  RV_EXPECT_CLOSE(linear(x.cuda(), w.cuda(), b.cuda()).cpu(), linear(x, w, b), .rtol = 0, .atol = 0);
}

TEST_CASE("backend gemm with the bias and GELU epilogues, every impl") {
 for (const Shape& mkn : {Shape{197, 96, 130}, Shape{33, 5000, 20}}) {  // the second: split-K under "ours"
  const int64_t M = mkn[0], K = mkn[1], N = mkn[2];
  CAPTURE(shape_str(mkn));
  const double tol = 1e-5 * std::sqrt(double(K) / 96.0);
  const Tensor x = test::test_tensor({M, K}, 15), w = test::test_tensor({N, K}, 16), b = test::test_tensor({N}, 17);
  const Tensor want_bias = linear(x, w, b);
  const Tensor want_gelu = gelu(want_bias);
  for (Impl impl : kImpls) {
    ImplGuard ig(impl);
    CAPTURE(impl_name(impl));
    backend::DeviceBackend& be = backend::get(kDev);
    const Tensor a3 = x.cuda().unsqueeze(0), b3 = w.cuda().t().unsqueeze(0);
    const Tensor yb = be.gemm(a3, b3, b.cuda(), false), yg = be.gemm(a3, b3, b.cuda(), true);
    CHECK(yb.shape() == Shape{1, M, N});
    RV_EXPECT_CLOSE(yb.cpu().reshape({M, N}), want_bias, .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(yg.cpu().reshape({M, N}), want_gelu, .rtol = tol, .atol = tol);
    const Tensor yg0 = be.gemm(a3, b3, Tensor(), true);  // GELU without bias
    RV_EXPECT_CLOSE(yg0.cpu().reshape({M, N}), gelu(matmul(x, w.t())), .rtol = tol, .atol = tol);
  }
 }
}

TEST_CASE("column_sum on cuda: odd shapes, strided rows, deterministic") {
  for (Shape s : {Shape{1, 1}, Shape{7, 197}, Shape{4097, 7}, Shape{1000, 1}, Shape{0, 5}, Shape{3, 0}}) {
    CAPTURE(shape_str(s));
    const Tensor x = test::test_tensor(s, 18);
    const Tensor got = backend::get(kDev).column_sum(x.cuda());
    RV_EXPECT_CLOSE(got.cpu(), sum(x, {0}), .rtol = 1e-6, .atol = 1e-6);
    CHECK(backend::get(kDev).column_sum(x.cuda()).cpu().to_double_vector() == got.cpu().to_double_vector());
  }
  const Tensor x = test::test_noncontiguous({300, 21}, 19);
  RV_EXPECT_CLOSE(backend::get(kDev).column_sum(x.cuda()).cpu(), sum(x, {0}), .rtol = 1e-6, .atol = 1e-6);
}

TEST_CASE("matmul on cuda: clear errors for other dtypes and mixed devices") {
  const Tensor a = test::test_tensor({3, 4}, 20), b = test::test_tensor({4, 2}, 21);
  CHECK_THROWS_WITH(matmul(a.to(DType::f64).cuda(), b.to(DType::f64).cuda()),
                    doctest::Contains("dtype f64 is not implemented on cuda:0"));
  CHECK_THROWS_WITH(matmul(a.cuda(), b), doctest::Contains("different devices"));
  CHECK_THROWS_WITH(linear(a.cuda(), test::test_tensor({2, 4}, 22)), doctest::Contains("different devices"));
}
