// test_softmax.cpp: softmax / log_softmax on cuda (cuda/kernels/softmax.cu) against the CPU op:
// both row mappings (a warp per row up to 1024 values, a block per row beyond), scalar and
// 128-bit paths, any dim (moved last), non-contiguous inputs, empty tensors, non-finite rows,
// bf16 storage, the gradients that autograd produces on the device, and determinism. Skipped
// (exit 77) without a GPU.
//
// Tolerances (per dtype, against the CPU op on the same input):
//   f32:  rtol 1e-5, atol 1e-6 (softmax) / 1e-5 (log_softmax: values near -10 whose last bits
//         differ): expf vs the CPU's vectorised exp (~1 ulp each) and a different summation
//         order (warp butterflies vs 16 lanes) give ~1e-6 relative.
//   f64:  rtol 1e-12, atol 1e-12: libm-quality exp on both sides, different summation orders.
//   bf16: rtol 1e-2, atol 1e-3 (softmax) / 4e-2 (log_softmax): both sides compute in f32 and
//         round once to bf16 (8 bits of mantissa), so a value on a rounding boundary may round
//         the other way: one bf16 ulp, 2^-8 relative.
// Gradients: the same tolerances, the backward being one more row sum and elementwise step.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

Tensor apply(bool log, const Tensor& x, int64_t dim) { return log ? log_softmax(x, dim) : softmax(x, dim); }

struct Tols {
  double rtol, atol;
};
Tols tols(DType dt, bool log) {
  if (dt == DType::f64) return {1e-12, 1e-12};
  if (dt == DType::bf16) return {1e-2, log ? 4e-2 : 1e-3};
  return {1e-5, log ? 1e-5 : 1e-6};
}

// Row lengths around every boundary of the launch choice: 1, odd, 197 (ViT attention), 49 (Swin
// windows), multiples of 4 and 8 (128-bit path), 1024 / 1025 (warp -> block), 4097 (odd, block).
const std::vector<Shape> kShapes = {{1, 1},   {3, 7},    {5, 197},  {2, 3, 49}, {4, 1000}, {2, 4097},
                                    {0, 5},   {5, 0},    {6, 8},    {7, 32},    {3, 1024}, {2, 1025},
                                    {2, 4096}, {9, 200}, {3, 64},   {130, 33}};

}  // namespace

TEST_CASE("softmax and log_softmax on cuda match the CPU over the last dim (f32, f64, bf16)") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (bool log : {false, true}) {
      for (const Shape& shape : kShapes) {
        CAPTURE(dtype_name(dt));
        CAPTURE(log);
        CAPTURE(shape_str(shape));
        // Wide values (-8, 8) so that the max subtraction and the exp range matter.
        const Tensor x = test::test_tensor(shape, 21, DType::f32, -8.0, 8.0).to(dt);
        const Tensor want = apply(log, x, -1);
        const Tensor got = apply(log, x.cuda(), -1);
        CHECK(got.device() == kDev);
        CHECK(got.dtype() == dt);
        CHECK(got.is_contiguous());
        const Tols t = tols(dt, log);
        RV_EXPECT_CLOSE(got.cpu(), want, .rtol = t.rtol, .atol = t.atol);
      }
    }
  }
}

TEST_CASE("softmax on cuda over dim 0, a middle dim, a 0-d tensor, and non-contiguous inputs") {
  const Tensor x = test::test_tensor({5, 6, 7}, 22, DType::f32, -4.0, 4.0);
  for (bool log : {false, true}) {
    CAPTURE(log);
    const Tols t = tols(DType::f32, log);
    for (int64_t dim : {0, 1, 2, -2}) {
      CAPTURE(dim);
      const Tensor got = apply(log, x.cuda(), dim);
      CHECK(got.shape() == x.shape());
      CHECK(got.is_contiguous());
      RV_EXPECT_CLOSE(got.cpu(), apply(log, x, dim), .rtol = t.rtol, .atol = t.atol);
    }
    // Transposed and stepped views of a device tensor, over the last dim and dim 0.
    const Tensor nc = test::test_noncontiguous({9, 197}, 23);
    RV_EXPECT_CLOSE(apply(log, nc.cuda().t(), 0).cpu(), apply(log, nc.t(), 0), .rtol = t.rtol, .atol = t.atol);
    const Tensor d = x.cuda();
    RV_EXPECT_CLOSE(apply(log, d.slice(2, 1, 7, 2), -1).cpu(), apply(log, x.slice(2, 1, 7, 2), -1), .rtol = t.rtol,
                    .atol = t.atol);
    RV_EXPECT_CLOSE(apply(log, d.permute({2, 0, 1}), 1).cpu(), apply(log, x.permute({2, 0, 1}), 1), .rtol = t.rtol,
                    .atol = t.atol);
    // A 0-d tensor is one row of one value.
    const Tensor s = scalar_tensor(3.5, DType::f32);
    RV_EXPECT_CLOSE(apply(log, s.cuda(), 0).cpu(), apply(log, s, 0), .rtol = 0, .atol = 0);
  }
}

TEST_CASE("softmax on cuda: -inf entries give 0, all -inf / +inf / NaN rows give NaN, as the CPU") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Rows of 5 (warp path) and of 1500 (block path) with the same special values at the front.
  for (int64_t len : {int64_t(5), int64_t(1500)}) {
    CAPTURE(len);
    Tensor x = test::test_tensor({6, len}, 24, DType::f32, -3.0, 3.0);
    float* p = x.data<float>();
    p[0 * len + 0] = float(-inf);             // row 0: one -inf first (exercises the online max's start)
    p[0 * len + 3] = float(-inf);
    for (int64_t j = 0; j < len; ++j) p[1 * len + j] = float(-inf);  // row 1: all -inf
    p[2 * len + 2] = float(inf);              // row 2: +inf
    p[3 * len + 1] = float(nan);              // row 3: NaN
    p[4 * len + len - 1] = float(-inf);       // row 4: -inf last
    for (bool log : {false, true}) {          // row 5: plain
      CAPTURE(log);
      const Tensor want = apply(log, x, 1);
      const Tensor got = apply(log, x.cuda(), 1).cpu();
      const Tols t = tols(DType::f32, log);
      RV_EXPECT_CLOSE(got, want, .rtol = t.rtol, .atol = t.atol);
      // The CPU's contract itself, so the comparison above cannot pass vacuously.
      CHECK(got.data<float>()[0] == (log ? -inf : 0.0));
      CHECK(std::isnan(got.data<float>()[1 * len]));
      CHECK(std::isnan(got.data<float>()[2 * len]));
      CHECK(std::isnan(got.data<float>()[3 * len]));
      CHECK(std::isfinite(got.data<float>()[5 * len]));
    }
  }
}

TEST_CASE("softmax gradients through autograd on cuda equal the CPU's (any dim, f32 and f64)") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool log : {false, true}) {
      for (const Shape& shape : {Shape{3, 7}, Shape{5, 197}, Shape{4, 1000}, Shape{2, 4097}, Shape{2, 3, 49},
                                 Shape{0, 5}, Shape{6, 8}}) {
        for (int64_t dim : {int64_t(-1), int64_t(0)}) {
          CAPTURE(dtype_name(dt));
          CAPTURE(log);
          CAPTURE(shape_str(shape));
          CAPTURE(dim);
          const Tensor x0 = test::test_tensor(shape, 25, dt, -4.0, 4.0);
          const Tensor w0 = test::test_tensor(shape, 26, dt);  // weights: sum(softmax) alone has a 0 gradient
          Tensor xh = x0.clone().requires_grad_();
          sum(mul(apply(log, xh, dim), w0)).backward();
          Tensor xd = x0.cuda().requires_grad_();
          sum(mul(apply(log, xd, dim), w0.cuda())).backward();
          REQUIRE(xd.grad().defined());
          CHECK(xd.grad().device() == kDev);
          const Tols t = tols(dt, log);
          RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = t.rtol, .atol = t.atol);
        }
      }
    }
  }
}

TEST_CASE("softmax backward kernel in bf16 against a plain f32 loop over the same bf16 values") {
  backend::DeviceBackend& be = backend::get(kDev);
  for (bool log : {false, true}) {
    for (const Shape& shape : {Shape{5, 197}, Shape{4, 1000}, Shape{2, 4097}, Shape{3, 64}}) {
      CAPTURE(log);
      CAPTURE(shape_str(shape));
      const Tensor x = test::test_tensor(shape, 27, DType::f32, -4.0, 4.0).to(DType::bf16);
      const Tensor y = apply(log, x.cuda(), -1);  // bf16 on the device
      const Tensor dy = test::test_tensor(shape, 28, DType::f32).to(DType::bf16);
      const Tensor dx = be.softmax_last_dim_backward(dy.cuda(), y, log).cpu();
      REQUIRE(dx.dtype() == DType::bf16);
      // Reference: the formulas in f32 from the bf16 values, rounded once to bf16.
      const Tensor yh = y.cpu().to(DType::f32), gh = dy.to(DType::f32);
      const int64_t len = shape.back(), rows = yh.numel() / len;
      Tensor want = empty(shape, DType::f32);
      for (int64_t r = 0; r < rows; ++r) {
        const float* yr = yh.data<float>() + r * len;
        const float* gr = gh.data<float>() + r * len;
        double a = 0;
        for (int64_t j = 0; j < len; ++j) a += log ? gr[j] : double(gr[j]) * yr[j];
        for (int64_t j = 0; j < len; ++j)
          want.data<float>()[r * len + j] =
              float(log ? gr[j] - std::exp(double(yr[j])) * a : yr[j] * (gr[j] - a));
      }
      RV_EXPECT_CLOSE(dx.to(DType::f32), want.to(DType::bf16).to(DType::f32), .rtol = 1e-2, .atol = 2e-3);
    }
  }
}

TEST_CASE("softmax on cuda is deterministic and rejects dtypes it has no kernel for") {
  const Tensor x = test::test_tensor({37, 4097}, 29).cuda();
  const Tensor a = softmax(x, -1).cpu(), b = softmax(x, -1).cpu();
  CHECK(a.to_double_vector() == b.to_double_vector());
  const Tensor h = test::test_tensor({3, 7}, 30).to(DType::f16).cuda();
  CHECK_THROWS_WITH(softmax(h, -1), doctest::Contains("softmax: dtype float16 is not implemented on cuda:0 yet"));
  CHECK_THROWS_WITH(log_softmax(h, 0), doctest::Contains("log_softmax: dtype float16 is not implemented on cuda:0"));
}
