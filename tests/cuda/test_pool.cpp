// test_pool.cpp: max_pool2d (with indices), avg_pool2d (count_include_pad on and off, a divisor
// override, ceil_mode), adaptive_avg_pool2d and adaptive_max_pool2d on cuda against the CPU ops,
// forward and the input gradient through autograd, on odd shapes (planes not a multiple of the
// block, 1x1 and 197-wide images, overlapping windows, dilation, 3-D input, non-contiguous input).
// Skipped (exit 77) without a GPU.
//
// Tolerances: the kernels use the CPU's span tables and add in the CPU's order (forward: rows
// then columns; backward: ascending output cell), with the same divisions, so results are bit
// for bit (rtol = atol = 0), f32 and f64; the max indices are equal.
#include <doctest/doctest.h>

#include <functional>

#include "engine/autograd.h"
#include "engine/ops/math.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

using PoolFn = std::function<Tensor(const Tensor&)>;

struct Result {
  Tensor y, dx;
};

Result run(const PoolFn& f, const Tensor& x, Device device, bool transposed) {
  // transposed: the same values stored with H and W swapped on the device, viewed back.
  Tensor xd = transposed ? x.transpose(-1, -2).contiguous().to(device).transpose(-1, -2) : x.to(device);
  Tensor xl = xd.detach().requires_grad_();
  Tensor y = f(xl);
  const Tensor gy = test::test_tensor(y.shape(), 9, x.dtype());
  y.backward(gy.to(device));
  return {y.cpu(), xl.grad().cpu()};
}

void compare(const char* what, const PoolFn& f, const Shape& shape, bool transposed = false) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(what);
    CAPTURE(shape_str(shape));
    CAPTURE(dtype_name(dt));
    const Tensor x = test::test_tensor(shape, 1, dt);
    const Result want = run(f, x, cpu_device(), false);
    const Result got = run(f, x, cuda_device(0), transposed);
    RV_EXPECT_CLOSE(got.y, want.y, .rtol = 0, .atol = 0);
    RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 0, .atol = 0);
  }
}

}  // namespace

TEST_CASE("max_pool2d on cuda equals the CPU: overlap, padding, dilation, ceil_mode, indices") {
  compare("3x3 s2 p1", [](const Tensor& x) { return max_pool2d(x, {3}, {2}, {1}); }, {2, 5, 13, 11});
  compare("2x2", [](const Tensor& x) { return max_pool2d(x, {2}); }, {3, 7, 8, 8});
  compare("dilated", [](const Tensor& x) { return max_pool2d(x, {3, 2}, {1, 2}, {1, 0}, {2, 1}); }, {1, 3, 9, 7});
  compare("ceil", [](const Tensor& x) { return max_pool2d(x, {3}, {2}, {0}, {1}, true); }, {2, 2, 10, 9});
  compare("3-D input", [](const Tensor& x) { return max_pool2d(x, {2}, {1}); }, {4, 5, 6});
  compare("non-contiguous", [](const Tensor& x) { return max_pool2d(x, {3}, {2}, {1}); }, {2, 3, 9, 12}, true);
  // The indices are the CPU's, and ties keep the first maximum.
  const Tensor x = test::test_tensor({2, 3, 11, 9}, 4);
  const Tensor ties = gt(x, 0.0).to(DType::f32);  // many equal values
  for (const Tensor& in : {x, ties}) {
    auto want = max_pool2d_with_indices(in, {3}, {2}, {1});
    auto got = max_pool2d_with_indices(in.cuda(), {3}, {2}, {1});
    RV_EXPECT_CLOSE(got.first.cpu(), want.first, .rtol = 0, .atol = 0);
    RV_EXPECT_CLOSE(got.second.cpu().to(DType::f64), want.second.to(DType::f64), .rtol = 0, .atol = 0);
  }
}

TEST_CASE("avg_pool2d on cuda equals the CPU: count_include_pad, divisor_override, ceil_mode") {
  compare("pad incl", [](const Tensor& x) { return avg_pool2d(x, {3}, {2}, {1}); }, {2, 5, 13, 11});
  compare("pad excl", [](const Tensor& x) { return avg_pool2d(x, {3}, {2}, {1}, false, false); }, {2, 5, 13, 11});
  compare("divisor", [](const Tensor& x) { return avg_pool2d(x, {2, 3}, {2, 1}, {1, 1}, false, true, 5); },
          {1, 4, 7, 6});
  compare("ceil", [](const Tensor& x) { return avg_pool2d(x, {3}, {2}, {1}, true); }, {2, 3, 10, 10});
  compare("1x1 image", [](const Tensor& x) { return avg_pool2d(x, {1}); }, {3, 2, 1, 1});
  compare("wide", [](const Tensor& x) { return avg_pool2d(x, {1, 4}, {1, 3}); }, {1, 2, 2, 197});
}

TEST_CASE("adaptive pools on cuda equal the CPU: UperNet's pyramid (1, 2, 3, 6), uneven cells") {
  for (int64_t s : {1, 2, 3, 6}) {
    CAPTURE(s);
    compare("adaptive avg", [s](const Tensor& x) { return adaptive_avg_pool2d(x, {s}); }, {2, 7, 13, 10});
    compare("adaptive max", [s](const Tensor& x) { return adaptive_max_pool2d(x, {s}); }, {2, 7, 13, 10});
  }
  compare("adaptive avg up", [](const Tensor& x) { return adaptive_avg_pool2d(x, {7, 5}); }, {1, 3, 4, 3});
  compare("adaptive avg non-contiguous", [](const Tensor& x) { return adaptive_avg_pool2d(x, {3}); },
          {2, 4, 7, 11}, true);
}

TEST_CASE("pooling on cuda: empty batch, bf16 throws clearly") {
  const Tensor e = empty({0, 3, 4, 4}).cuda();
  CHECK(max_pool2d(e, {2}).shape() == Shape{0, 3, 2, 2});
  CHECK(avg_pool2d(e, {2}).shape() == Shape{0, 3, 2, 2});
  CHECK_THROWS_WITH(max_pool2d(test::test_tensor({1, 2, 4, 4}, 1).to(DType::bf16).cuda(), {2}),
                    doctest::Contains("dtype bfloat16 is not implemented on cuda:0"));
}
