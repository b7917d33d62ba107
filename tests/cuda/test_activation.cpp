// test_activation.cpp: gelu (erf and tanh forms), relu, silu and sigmoid on cuda
// (cuda/kernels/activation.cu) against the CPU ops, forward and backward through autograd, on
// lengths 1, 7, 1023, 4097 (vector body plus scalar tail), non-contiguous and misaligned inputs,
// bf16, and special values (0, -0, +-inf, NaN, large |x|). Skipped (exit 77) without a GPU.
//
// Tolerances (|got - want| <= atol + rtol |want|):
//   f32 against the CPU's f32 op: rtol 1e-5, atol 1e-6 (CUDA's expf / erfcf and the CPU's
//     vec_math exp / sigmoid are each within a few ulp), except gelu (erf form), whose CPU f32
//     normal CDF is a rational good to 2.5e-7 absolute only: atol 2.5e-7 (1 + |x|) <= 2e-6 for
//     |x| <= 6, so atol 2e-6 there.
//   f32 against the CPU's f64 op (the exact function, libm): rtol 1e-5, atol 3e-7 (a few ulp,
//     plus the cancellation in the derivatives).
//   bf16 (computed in f32, rounded once on both sides): one bf16 step, rtol 8e-3 (2^-7), atol 4e-6.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

struct Act {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  double atol_f32;  // against the CPU f32 op (see the header)
};

const std::vector<Act>& acts() {
  static const std::vector<Act> a = {
      {"gelu", [](const Tensor& x) { return gelu(x); }, 2e-6},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }, 1e-6},
      {"relu", [](const Tensor& x) { return relu(x); }, 0.0},
      {"silu", [](const Tensor& x) { return silu(x); }, 1e-6},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, 1e-6},
  };
  return a;
}

struct Out {
  Tensor y, dx;
};

// f on `device` of a copy of x (kept as the given view when x is already there), backward with g.
Out run(const Act& a, const Tensor& x, const Tensor& g) {
  Tensor leaf = x.detach().requires_grad_();
  Tensor y = a.f(leaf);
  y.backward(g.to(x.device()));
  return {y.detach().cpu(), leaf.grad().cpu()};
}

void check_against_cpu(const Act& a, const Tensor& xh, const Tensor& xd, const Tensor& g) {
  const Out want = run(a, xh, g), got = run(a, xd, g);
  if (xh.dtype() == DType::bf16) {
    RV_EXPECT_CLOSE(got.y, want.y, .rtol = 8e-3, .atol = 4e-6);
    RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 8e-3, .atol = 4e-6);
    return;
  }
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = 1e-5, .atol = a.atol_f32);
  RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 1e-5, .atol = a.atol_f32);
  // And against the exact function: the CPU op in f64.
  const Out exact = run(a, xh.to(DType::f64), g.to(DType::f64));
  RV_EXPECT_CLOSE(got.y, exact.y.to(DType::f32), .rtol = 1e-5, .atol = 3e-7);
  RV_EXPECT_CLOSE(got.dx, exact.dx.to(DType::f32), .rtol = 1e-5, .atol = 3e-7);
}

}  // namespace

TEST_CASE("activations on cuda match the CPU: f32 and bf16, odd lengths") {
  for (const Act& a : acts()) {
    for (DType dt : {DType::f32, DType::bf16}) {
      for (int64_t n : {int64_t(1), int64_t(7), int64_t(1023), int64_t(4097)}) {
        CAPTURE(a.name);
        CAPTURE(dtype_name(dt));
        CAPTURE(n);
        const Tensor x = test::test_tensor({n}, 1, dt, -6.0, 6.0);
        const Tensor g = test::test_tensor({n}, 2, dt);
        const Tensor xd = x.cuda();
        check_against_cpu(a, x, xd, g);
        CHECK(a.f(xd).device() == kDev);
      }
    }
  }
}

TEST_CASE("activations on cuda: non-contiguous, misaligned and empty inputs") {
  for (const Act& a : acts()) {
    CAPTURE(a.name);
    // Transposed storage: made contiguous first.
    const Tensor xn = test::test_noncontiguous({33, 41}, 3);
    check_against_cpu(a, xn, xn.cuda().t().contiguous().t(), test::test_tensor({33, 41}, 4));
    // Contiguous but 4 bytes off a 16-byte boundary: the scalar kernels.
    const Tensor flat = test::test_tensor({1 + 1023}, 5, DType::f32, -6.0, 6.0);
    const Tensor xd = flat.cuda().narrow(0, 1, 1023);
    CHECK(xd.offset() == 1);
    check_against_cpu(a, flat.narrow(0, 1, 1023), xd, test::test_tensor({1023}, 6));
    // Same for bf16 (2 bytes off).
    const Tensor flat16 = test::test_tensor({1 + 1023}, 7, DType::bf16, -6.0, 6.0);
    check_against_cpu(a, flat16.narrow(0, 1, 1023), flat16.cuda().narrow(0, 1, 1023),
                      test::test_tensor({1023}, 8, DType::bf16));
    // Empty.
    const Tensor e = a.f(zeros({0, 5}, DType::f32, kDev));
    CHECK(e.shape() == Shape{0, 5});
  }
}

TEST_CASE("activations on cuda: special values give the CPU's results (NaN where the CPU's is NaN)") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {0.0,  -0.0,  inf,   -inf,  nan,  1e-30, -1e-30, 30.0, -30.0,
                                 88.0, -88.0, 100.0, -100.0, 1e4, -1e4,  1e30,   -1e30, 0.5,
                                 -0.5, 5.6,   -5.6,  9.5,   -9.5, 20.0, -20.0,  1.0,  -1.0};
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor x = from_vector(v, {int64_t(v.size())}, dt);
    const Tensor g = ones({int64_t(v.size())}, dt);
    for (const Act& a : acts()) {
      CAPTURE(a.name);
      CAPTURE(dtype_name(dt));
      const Out want = run(a, x, g), got = run(a, x.cuda(), g);
      // compare() counts NaN == NaN and equal infinities as equal.
      const double rtol = dt == DType::bf16 ? 8e-3 : 1e-5;
      RV_EXPECT_CLOSE(got.y, want.y, .rtol = rtol, .atol = 4e-6);
      RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = rtol, .atol = 4e-6);
    }
  }
}

TEST_CASE("activations on cuda: gelu's approximate is checked, unsupported dtypes are named") {
  const Tensor x = test::test_tensor({8}, 9).cuda();
  CHECK_THROWS_WITH_AS(gelu(x, "fast"), doctest::Contains("approximate must be"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(relu(test::test_tensor({8}, 10, DType::f64).cuda()),
                       doctest::Contains("relu: dtype float64 is not implemented on cuda:0 yet"), std::runtime_error);
}
