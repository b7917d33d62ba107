// test_kernels.cpp: the first CUDA kernels against the CPU: add / sub / mul / div with
// broadcasting and strided inputs, the strided copy behind contiguous() / copy_(), the sum of
// all elements, and a small backward pass on the device. Skipped (exit 77) without a GPU.
//
// Tolerances: the elementwise kernels do one IEEE operation per element, as the CPU does, so
// they must match bit for bit (CUDA's '/' is correctly rounded by default). The sum
// accumulates in double on both sides, in different orders: rtol 1e-6 for f32 outputs,
// 1e-12 for f64.
#include <doctest/doctest.h>

#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

Tensor apply(backend::BinaryOp op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case backend::BinaryOp::add: return add(a, b);
    case backend::BinaryOp::sub: return sub(a, b);
    case backend::BinaryOp::mul: return mul(a, b);
    case backend::BinaryOp::div: return div(a, b);
  }
  return Tensor();
}

// An input whose values stay away from 0 (for div), reproducible.
Tensor input(const Shape& shape, uint64_t seed, DType dt) { return test::test_tensor(shape, seed, dt, 0.5, 2.0); }

}  // namespace

TEST_CASE("add/sub/mul/div on cuda equal the CPU bit for bit: same shape, broadcast, strided, empty") {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{1031}, {1031}},              // contiguous, odd length
      {{7, 33}, {33}},               // row broadcast (a bias)
      {{3, 1, 5}, {4, 1}},           // both sides broadcast
      {{}, {6, 5}},                  // 0-d against a matrix
      {{2, 1, 1, 3}, {1, 1, 1, 1}},  // size-1 dims everywhere
      {{0, 5}, {5}},                 // empty
      {{2, 3, 4, 5, 6}, {3, 1, 5, 1}},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      for (backend::BinaryOp op :
           {backend::BinaryOp::add, backend::BinaryOp::sub, backend::BinaryOp::mul, backend::BinaryOp::div}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(shape_str(c.a));
        CAPTURE(shape_str(c.b));
        CAPTURE(backend::binary_op_name(op));
        const Tensor a = input(c.a, 1, dt), b = input(c.b, 2, dt);
        const Tensor want = apply(op, a, b);
        const Tensor got = apply(op, a.cuda(), b.cuda());
        CHECK(got.device() == kDev);
        CHECK(got.is_contiguous());
        RV_EXPECT_CLOSE(got.cpu(), want, .rtol = 0, .atol = 0);
      }
    }
  }
}

TEST_CASE("binary ops read non-contiguous device inputs (transposed, stepped, expanded)") {
  const Tensor a = input({9, 14}, 3, DType::f32), b = input({14, 9}, 4, DType::f32);
  const Tensor da = a.cuda(), db = b.cuda();
  RV_EXPECT_CLOSE(add(da, db.t()).cpu(), add(a, b.t()), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(mul(da.slice(1, 1, 14, 3), db.t().slice(1, 0, 14, 3)).cpu(),
                  mul(a.slice(1, 1, 14, 3), b.t().slice(1, 0, 14, 3)), .rtol = 0, .atol = 0);
  const Tensor col = input({9, 1}, 5, DType::f32);
  RV_EXPECT_CLOSE(div(da, col.cuda().expand({9, 14})).cpu(), div(a, col.expand({9, 14})), .rtol = 0, .atol = 0);
  // Seven dims that no merging can shorten (all permuted): the general index path.
  const Tensor big = input({2, 3, 2, 3, 2, 3, 2}, 6, DType::f64);
  const Shape perm = {6, 5, 4, 3, 2, 1, 0};
  RV_EXPECT_CLOSE(sub(big.cuda().permute(perm), big.cuda().permute(perm)).cpu(),
                  sub(big.permute(perm), big.permute(perm)), .rtol = 0, .atol = 0);
}

TEST_CASE("contiguous() and copy_ on cuda: permuted, stepped, broadcast sources, every element size") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i64, DType::u8}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = test::test_tensor({5, 6, 7}, 8, DType::f32, -50, 50).to(dt);
    const Tensor d = x.cuda();
    const Tensor views[] = {x.permute({2, 0, 1}), x.slice(1, 1, 6, 2), x.select(2, 3), x.t()};
    const Tensor dviews[] = {d.permute({2, 0, 1}), d.slice(1, 1, 6, 2), d.select(2, 3), d.t()};
    for (size_t i = 0; i < 4; ++i) {
      CAPTURE(i);
      const Tensor c = dviews[i].contiguous();
      CHECK(c.is_contiguous());
      CHECK(c.device() == kDev);
      CHECK(c.cpu().to_double_vector() == views[i].contiguous().to_double_vector());
    }
  }
  // copy_ with broadcasting, device to device, into a strided destination.
  const Tensor row = test::test_tensor({7}, 9);
  Tensor host = zeros({4, 7}), dev = zeros({4, 7}, DType::f32, kDev);
  host.slice(0, 0, 4, 2).copy_(row);
  dev.slice(0, 0, 4, 2).copy_(row.cuda());
  RV_EXPECT_CLOSE(dev.cpu(), host, .rtol = 0, .atol = 0);
  // copy_ of a host tensor into a device one (same size: moved to the device first).
  dev.copy_(test::test_tensor({4, 7}, 10));
  RV_EXPECT_CLOSE(dev.cpu(), test::test_tensor({4, 7}, 10), .rtol = 0, .atol = 0);
}

TEST_CASE("sum of all elements on cuda matches the CPU and is deterministic") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(1000), int64_t(2049), int64_t(3 << 20) + 7}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(n);
      const Tensor x = test::test_tensor({n}, 11, dt);
      const Tensor d = x.cuda();
      const Tensor s = sum(d);
      CHECK(s.device() == kDev);
      CHECK(s.dim() == 0);
      const double tol = dt == DType::f32 ? 1e-6 : 1e-12;
      RV_EXPECT_CLOSE(s.cpu(), sum(x), .rtol = tol, .atol = tol);
      CHECK(sum(d).item() == s.item());  // same bits on a second run
    }
  }
  // A non-contiguous input and keepdim.
  const Tensor x = test::test_noncontiguous({37, 41}, 12);
  const Tensor s = sum(x.cuda(), {0, 1}, /*keepdim=*/true);
  CHECK(s.shape() == Shape{1, 1});
  RV_EXPECT_CLOSE(s.cpu(), sum(x, {0, 1}, true), .rtol = 1e-6, .atol = 1e-6);
}

TEST_CASE("a small backward pass on cuda: sum(a * b + a) gives the CPU's gradients") {
  const Tensor a0 = test::test_tensor({6, 5}, 13), b0 = test::test_tensor({6, 5}, 14);
  Tensor a = a0.cuda().requires_grad_(), b = b0.cuda().requires_grad_();
  sum(add(mul(a, b), a)).backward();
  Tensor ah = a0.clone().requires_grad_(), bh = b0.clone().requires_grad_();
  sum(add(mul(ah, bh), ah)).backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().device() == kDev);
  RV_EXPECT_CLOSE(a.grad().cpu(), ah.grad(), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(b.grad().cpu(), bh.grad(), .rtol = 0, .atol = 0);
}
