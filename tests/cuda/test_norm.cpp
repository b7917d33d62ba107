// test_norm.cpp: batch_norm (training with running buffers, eval, no affine) and group_norm on
// cuda against the CPU ops, forward, the gradients of x, weight and bias through autograd, and
// the running-buffer updates. Skipped (exit 77) without a GPU.
//
// Tolerances: on a device both norms are composed of device ops (engine/ops/norm_device.cpp)
// whose statistics are summed in the data's dtype (the CPU op sums in f64): f64 within 1e-10,
// f32 within 1e-4 (the statistics of up to ~10^4 values per channel, summed two-stage).
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/ops/norm.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

struct Out {
  Tensor y, gx, gw, gb, rm, rv;
};

Out run(Device dev, DType dt, const Shape& shape, int64_t groups, bool training, bool affine) {
  const int64_t C = shape[1];
  Tensor x = test::test_tensor(shape, 1, dt, -2.0, 3.0).to(dev).detach().requires_grad_();
  Tensor w, b;
  if (affine) {
    w = test::test_tensor({C}, 2, dt, 0.5, 1.5).to(dev).detach().requires_grad_();
    b = test::test_tensor({C}, 3, dt).to(dev).detach().requires_grad_();
  }
  Tensor rm = test::test_tensor({C}, 4, dt).to(dev), rv = test::test_tensor({C}, 5, dt, 0.5, 2.0).to(dev);
  Tensor y = groups > 0 ? group_norm(x, groups, w, b, 1e-5) : batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
  y.backward(test::test_tensor(y.shape(), 6, dt).to(dev));
  return {y.detach().cpu(), x.grad().cpu(), affine ? w.grad().cpu() : Tensor(), affine ? b.grad().cpu() : Tensor(),
          rm.cpu(), rv.cpu()};
}

void compare(const Shape& shape, int64_t groups, bool training, bool affine) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(shape_str(shape));
    CAPTURE(groups);
    CAPTURE(training);
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::f64 ? 1e-10 : 1e-4;
    const Out want = run(cpu_device(), dt, shape, groups, training, affine);
    const Out got = run(cuda_device(0), dt, shape, groups, training, affine);
    RV_EXPECT_CLOSE(got.y, want.y, .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(got.gx, want.gx, .rtol = tol, .atol = tol);
    if (affine) {
      RV_EXPECT_CLOSE(got.gw, want.gw, .rtol = tol, .atol = tol);
      RV_EXPECT_CLOSE(got.gb, want.gb, .rtol = tol, .atol = tol);
    }
    RV_EXPECT_CLOSE(got.rm, want.rm, .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(got.rv, want.rv, .rtol = tol, .atol = tol);
  }
}

}  // namespace

TEST_CASE("batch_norm on cuda equals the CPU: training (running buffers updated), eval, no affine") {
  compare({4, 16, 13, 11}, 0, true, true);
  compare({2, 512, 8, 8}, 0, true, true);  // UperNet's PPM / FPN channel counts
  compare({3, 5, 7}, 0, true, false);
  compare({6, 3}, 0, true, true);
  compare({4, 16, 13, 11}, 0, false, true);
}

TEST_CASE("group_norm on cuda equals the CPU") {
  compare({2, 32, 9, 7}, 8, true, true);
  compare({3, 6, 5}, 1, true, false);
}
