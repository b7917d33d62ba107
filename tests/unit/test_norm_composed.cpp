// test_norm_composed.cpp: the device composition of batch_norm and group_norm
// (engine/ops/norm_device.cpp) run on the CPU against the CPU ops. The composition uses only
// generic ops (mean over dims, broadcast arithmetic, rsqrt), so it runs on CPU tensors too: this
// checks its formulas, its autograd (gradients of x, weight and bias through the statistics)
// and its running-buffer updates on any machine, in f64 (to 1e-12). On a GPU,
// tests/cuda/test_norm.cpp checks the same against the CPU ops with device tensors.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/ops/norm.h"
#include "engine/ops/norm_device.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

struct Out {
  Tensor y, gx, gw, gb, rm, rv;
};

template <class F>
Out run(F f, const Shape& shape, int64_t C, bool with_affine, bool with_running) {
  Tensor x = test::test_tensor(shape, 1, DType::f64, -2.0, 3.0).requires_grad_();
  Tensor w, b;
  if (with_affine) {
    w = test::test_tensor({C}, 2, DType::f64, 0.5, 1.5).requires_grad_();
    b = test::test_tensor({C}, 3, DType::f64).requires_grad_();
  }
  Tensor rm, rv;
  if (with_running) {
    rm = test::test_tensor({C}, 4, DType::f64);
    rv = test::test_tensor({C}, 5, DType::f64, 0.5, 2.0);
  }
  Tensor y = f(x, w, b, rm, rv);
  y.backward(test::test_tensor(y.shape(), 6, DType::f64));
  return {y.detach(), x.grad(), w.defined() ? w.grad() : Tensor(), b.defined() ? b.grad() : Tensor(), rm, rv};
}

void expect_same(const Out& got, const Out& want) {
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = 1e-12, .atol = 1e-12);
  RV_EXPECT_CLOSE(got.gx, want.gx, .rtol = 1e-12, .atol = 1e-12);
  if (want.gw.defined()) {
    RV_EXPECT_CLOSE(got.gw, want.gw, .rtol = 1e-12, .atol = 1e-12);
    RV_EXPECT_CLOSE(got.gb, want.gb, .rtol = 1e-12, .atol = 1e-12);
  }
  if (want.rm.defined()) {
    RV_EXPECT_CLOSE(got.rm, want.rm, .rtol = 1e-12, .atol = 1e-12);
    RV_EXPECT_CLOSE(got.rv, want.rv, .rtol = 1e-12, .atol = 1e-12);
  }
}

}  // namespace

TEST_CASE("batch norm composed of generic ops equals batch_norm: training, eval, running buffers") {
  for (bool training : {true, false})
    for (bool affine : {true, false})
      for (const Shape& shape : {Shape{3, 4, 5, 7}, Shape{5, 3}, Shape{2, 6, 9}}) {
        CAPTURE(training);
        CAPTURE(affine);
        CAPTURE(shape_str(shape));
        const int64_t C = shape[1];
        const Out want = run([&](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm,
                                 const Tensor& rv) { return batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5); },
                             shape, C, affine, true);
        const Out got = run([&](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm,
                                const Tensor& rv) {
          return batch_norm_composed_on_device(x, rm, rv, w, b, training, 0.1, 1e-5);
        }, shape, C, affine, true);
        expect_same(got, want);
      }
  // Training without running buffers (track_running_stats=False).
  const Out want = run([](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor&, const Tensor&) {
    return batch_norm(x, {}, {}, w, b, true, 0.1, 1e-5);
  }, {4, 3, 6}, 3, true, false);
  const Out got = run([](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor&, const Tensor&) {
    return batch_norm_composed_on_device(x, {}, {}, w, b, true, 0.1, 1e-5);
  }, {4, 3, 6}, 3, true, false);
  expect_same(got, want);
}

TEST_CASE("group norm composed of generic ops equals group_norm") {
  for (bool affine : {true, false})
    for (const auto& [shape, groups] : {std::pair{Shape{2, 6, 5, 3}, int64_t(3)}, std::pair{Shape{3, 4, 7}, int64_t(1)},
                                        std::pair{Shape{2, 8, 2, 2}, int64_t(8)}}) {
      CAPTURE(affine);
      CAPTURE(shape_str(shape));
      const int64_t C = shape[1], G = groups;
      const Out want = run([&](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor&, const Tensor&) {
        return group_norm(x, G, w, b, 1e-5);
      }, shape, C, affine, false);
      const Out got = run([&](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor&, const Tensor&) {
        return group_norm_composed_on_device(x, G, w, b, 1e-5);
      }, shape, C, affine, false);
      expect_same(got, want);
    }
}
