// test_layernorm.cpp: layer_norm on cuda (cuda/kernels/layernorm.cu) against the CPU op, forward
// and backward through autograd (dx, dweight, dbias), f32 and bf16, on odd shapes: rows not a
// multiple of a block, C = 1, 5, 192, 197, 384, 768, 1000, 1536, 2048, 4097 (register kernels
// and the fallback), no rows, no weight / bias, non-contiguous and misaligned inputs; and the
// determinism of the two-stage dweight / dbias reduction. Skipped (exit 77) without a GPU.
//
// Tolerances (|got - want| <= atol + rtol |want|):
//   f32 outputs y: rtol 1e-5, atol 1e-5. The GPU accumulates the row statistics in f32 (lane
//     sums, then a warp tree), the CPU in f64; rows of up to 4097 values of size ~1 leave the
//     mean and rstd within a few 1e-7 relative.
//   f32 dx: rtol 1e-4, atol 1e-5 (dx = rstd (gy - mean(gy) - xhat mean(gy xhat)) cancels).
//   f32 dweight, dbias: rtol 1e-5, atol 1e-4 (column sums over up to 9000 rows in f32 partials,
//     added in double; the CPU sums in f64 in another order).
//   bf16 (stored bf16, computed in f32 on both sides): one rounding of values that differ by
//     ~1e-6 can land one bf16 step apart: rtol 1e-2, atol 1e-2 (dweight / dbias, sums of many
//     rows: atol 5e-2).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/layernorm.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

struct Grads {
  Tensor y, dx, dw, db;
};

// layer_norm of x, w, b (w, b may be undefined) where they live (x may be a device view), then
// backward with seed g; results come back to the host. Leaves are fresh detached aliases, so the
// callers' tensors never collect gradients. x_grad: whether x requires grad.
Grads run(const Tensor& x, const Shape& ns, const Tensor& w, const Tensor& b, const Tensor& g, bool x_grad = true) {
  const Device device = x.device();
  Tensor xl = x.detach().requires_grad_(x_grad);
  Tensor wl = w.defined() ? w.to(device).detach().requires_grad_() : Tensor();
  Tensor bl = b.defined() ? b.to(device).detach().requires_grad_() : Tensor();
  Tensor y = layer_norm(xl, ns, wl, bl, 1e-5);
  CHECK(y.device() == device);
  CHECK(y.dtype() == x.dtype());
  y.backward(g.to(device));
  Grads r;
  r.y = y.detach().cpu();
  if (x_grad) {
    CHECK(xl.grad().device() == device);
    r.dx = xl.grad().cpu();
  }
  if (wl.defined()) r.dw = wl.grad().cpu();
  if (bl.defined()) r.db = bl.grad().cpu();
  return r;
}

// The CPU run on xh and the cuda run on xd (the same values, on the device, any layout),
// compared with the tolerances of the header.
void check_case(const Tensor& xh, const Tensor& xd, const Shape& ns, const Tensor& w, const Tensor& b,
                bool x_grad = true) {
  const bool bf = xh.dtype() == DType::bf16;
  const Tensor g = test::test_tensor(xh.shape(), 99, xh.dtype());
  const Grads want = run(xh, ns, w, b, g, x_grad);
  const Grads got = run(xd, ns, w, b, g, x_grad);
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = bf ? 1e-2 : 1e-5, .atol = bf ? 1e-2 : 1e-5);
  if (x_grad) RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = bf ? 1e-2 : 1e-4, .atol = bf ? 1e-2 : 1e-5);
  if (w.defined()) RV_EXPECT_CLOSE(got.dw, want.dw, .rtol = bf ? 1e-2 : 1e-5, .atol = bf ? 5e-2 : 1e-4);
  if (b.defined()) RV_EXPECT_CLOSE(got.db, want.db, .rtol = bf ? 1e-2 : 1e-5, .atol = bf ? 5e-2 : 1e-4);
}

void check_case(const Tensor& x, const Shape& ns, const Tensor& w, const Tensor& b, bool x_grad = true) {
  check_case(x, x.cuda(), ns, w, b, x_grad);
}

std::string dims(const Shape& s) { return shape_str(s); }

}  // namespace

TEST_CASE("layer_norm on cuda matches the CPU: f32, odd shapes, with and without weight / bias") {
  struct Case {
    Shape x, ns;
  };
  const Case cases[] = {
      {{1, 1}, {1}},          {{7, 5}, {5}},        {{3, 197, 192}, {192}}, {{2, 768}, {768}},
      {{33, 384}, {384}},     {{4, 4097}, {4097}},  {{0, 8}, {8}},          {{5, 197}, {197}},
      {{9, 1000}, {1000}},    {{5, 1536}, {1536}},  {{3, 2048}, {2048}},    {{3, 4, 6}, {4, 6}},
      {{9000, 64}, {64}},  // more rows than 512 blocks of 8 warps: each warp takes several rows
  };
  for (const Case& c : cases) {
    for (int params = 0; params < 4; ++params) {  // none, weight, bias, both
      CAPTURE(dims(c.x));
      CAPTURE(params);
      const Tensor x = test::test_tensor(c.x, 1, DType::f32, -2.0, 3.0);
      const Tensor w = (params & 1) ? test::test_tensor(c.ns, 2, DType::f32, 0.5, 1.5) : Tensor();
      const Tensor b = (params & 2) ? test::test_tensor(c.ns, 3) : Tensor();
      check_case(x, c.ns, w, b);
    }
  }
}

TEST_CASE("layer_norm on cuda: bf16 input with bf16 or f32 parameters") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{7, 5}, {5}}, {{3, 197, 192}, {192}}, {{2, 768}, {768}}, {{33, 384}, {384}},
      {{9, 1000}, {1000}}, {{4, 4097}, {4097}}, {{0, 8}, {8}}, {{600, 384}, {384}},
  };
  for (const auto& [xs, ns] : cases) {
    for (DType pd : {DType::bf16, DType::f32}) {
      CAPTURE(dims(xs));
      CAPTURE(dtype_name(pd));
      const Tensor x = test::test_tensor(xs, 4, DType::bf16, -2.0, 3.0);
      const Tensor w = test::test_tensor(ns, 5, pd, 0.5, 1.5), b = test::test_tensor(ns, 6, pd);
      check_case(x, ns, w, b);
      check_case(x, ns, Tensor(), Tensor());
    }
  }
}

TEST_CASE("layer_norm on cuda: non-contiguous and misaligned inputs, parameter gradients only") {
  const Tensor w = test::test_tensor({384}, 7, DType::f32, 0.5, 1.5), b = test::test_tensor({384}, 8);
  // Transposed storage on the device (made contiguous by the op).
  const Tensor xn = test::test_noncontiguous({33, 384}, 9);
  const Tensor xnd = xn.cuda().t().contiguous().t();
  CHECK(!xnd.is_contiguous());
  check_case(xn, xnd, {384}, w, b);
  // Contiguous but 4 bytes off a 16-byte boundary: the scalar fallback (on both sides of the
  // device copy the view keeps its offset: built on the device from a larger buffer).
  {
    const Tensor flat = test::test_tensor({1 + 33 * 384}, 10);
    const Tensor xh = flat.narrow(0, 1, 33 * 384).view({33, 384});
    const Tensor g = test::test_tensor({33, 384}, 11);
    const Tensor want = layer_norm(xh, {384}, w, b);
    Tensor xd = flat.cuda().narrow(0, 1, 33 * 384).view({33, 384});
    CHECK(xd.is_contiguous());
    CHECK(xd.offset() == 1);
    RV_EXPECT_CLOSE(layer_norm(xd, {384}, w.cuda(), b.cuda()).cpu(), want, .rtol = 1e-5, .atol = 1e-5);
  }
  // x does not require grad: the backward computes dweight / dbias only.
  check_case(test::test_tensor({57, 768}, 12), {768}, test::test_tensor({768}, 13), test::test_tensor({768}, 14),
             /*x_grad=*/false);
  check_case(test::test_tensor({57, 197}, 15), {197}, test::test_tensor({197}, 16), test::test_tensor({197}, 17),
             /*x_grad=*/false);
}

TEST_CASE("layer_norm backward on cuda is deterministic: the same bits on every run") {
  for (const Shape& xs : {Shape{600, 768}, Shape{300, 197}}) {
    CAPTURE(dims(xs));
    const Shape ns = {xs[1]};
    const Tensor x = test::test_tensor(xs, 18), w = test::test_tensor(ns, 19), b = test::test_tensor(ns, 20);
    const Tensor g = test::test_tensor(xs, 21);
    const Tensor xd = x.cuda();
    const Grads a = run(xd, ns, w, b, g), c = run(xd, ns, w, b, g);
    CHECK(a.y.to_double_vector() == c.y.to_double_vector());
    CHECK(a.dx.to_double_vector() == c.dx.to_double_vector());
    CHECK(a.dw.to_double_vector() == c.dw.to_double_vector());
    CHECK(a.db.to_double_vector() == c.db.to_double_vector());
  }
}

TEST_CASE("layer_norm on cuda: clear errors for mixed devices and dtypes it does not take") {
  const Tensor x = test::test_tensor({4, 8}, 22).to(kDev);
  const Tensor w = test::test_tensor({8}, 23);
  CHECK_THROWS_WITH_AS(layer_norm(x, {8}, w), doctest::Contains("weight is on cpu"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer_norm(test::test_tensor({4, 8}, 24, DType::f64).cuda(), {8}),
                       doctest::Contains("dtype float64 is not implemented on cuda:0 yet"), std::runtime_error);
  CHECK_THROWS_WITH_AS(layer_norm(x, {8}, test::test_tensor({8}, 25, DType::bf16).cuda()),
                       doctest::Contains("not implemented on cuda:0 yet"), std::runtime_error);
}
