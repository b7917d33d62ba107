// test_minmax.cpp: max / min / argmax / argmin along one dim on cuda (the warp-per-row kernel
// for a contiguous reduced dim of 32 or more, the thread-per-output kernel otherwise), forward
// and backward, against the same public ops on the CPU. Skipped (exit 77) without a GPU.
//
// Tolerance: none. The result is one of the inputs and its index, chosen by the CPU's rules
// (the first NaN, else the first strictly best element), so values and indices must equal the
// CPU's bit for bit; so must the gradient (a scatter of the incoming values).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/same_bits.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

// Values on a coarse grid (many ties between elements), optionally with NaNs at a few places.
Tensor tied_values(const Shape& shape, uint64_t seed, DType dt, bool with_nan) {
  Tensor x = mul(test::test_tensor(shape, seed, DType::f64, -4.0, 4.0).to(DType::i64).to(DType::f64), 0.25);
  if (with_nan && x.numel() > 40) {
    auto flat = x.reshape({-1});
    for (int64_t i : {int64_t(3), int64_t(37), x.numel() - 2}) flat.slice(0, i, i + 1).fill_(NAN);
  }
  return x.to(dt);
}

void check_all(const Tensor& x, int64_t dim, bool keepdim) {
  const Tensor d = x.cuda();
  const ValuesIndices want_max = max(x, dim, keepdim), got_max = max(d, dim, keepdim);
  const ValuesIndices want_min = min(x, dim, keepdim), got_min = min(d, dim, keepdim);
  CHECK(got_max.values.device() == kDev);
  RV_EXPECT_SAME_BITS(got_max.values, want_max.values);
  RV_EXPECT_SAME_BITS(got_max.indices, want_max.indices);
  RV_EXPECT_SAME_BITS(got_min.values, want_min.values);
  RV_EXPECT_SAME_BITS(got_min.indices, want_min.indices);
  RV_EXPECT_SAME_BITS(argmax(d, dim, keepdim), argmax(x, dim, keepdim));
  RV_EXPECT_SAME_BITS(argmin(d, dim, keepdim), argmin(x, dim, keepdim));
}

}  // namespace

TEST_CASE("max/min/argmax/argmin over the last dim on cuda: lengths 1 .. 4097, ties, NaN, keepdim") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (int64_t len : {1, 7, 31, 32, 33, 197, 1000, 4097}) {
      for (bool nan : {false, true}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(len);
        CAPTURE(nan);
        const Tensor x = tied_values({13, len}, uint64_t(len), dt, nan);
        check_all(x, -1, false);
        check_all(x, 1, true);
      }
    }
  }
}

TEST_CASE("max/min over a leading or middle dim on cuda (strided reduction), and non-contiguous inputs") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = tied_values({5, 67, 9}, 3, dt, true);
    for (int64_t dim : {0, 1, 2, -1}) {
      CAPTURE(dim);
      check_all(x, dim, false);
      check_all(x, dim, true);
    }
    const Tensor t = tied_values({40, 50}, 4, dt, false).t();  // reduced dim 1 has stride 50
    check_all(t, 1, false);
    check_all(t, 0, false);
    const Tensor s = tied_values({9, 200}, 5, dt, true).slice(1, 1, 200, 3);  // stride 3, length 67
    check_all(s, 1, false);
    check_all(tied_values({300}, 6, dt, true), 0, false);  // 1-d: one output row
    check_all(tied_values({}, 7, dt, false), 0, false);    // 0-d
    check_all(tied_values({4, 0, 3}, 8, dt, false), 2, true);  // no outputs
  }
}

TEST_CASE("max/min on cuda: all-NaN rows, infinities, signed zeros") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> v = {-0.0, 0.0, 0.0, -0.0, nan, nan, nan, nan, -inf, inf, 3, inf, -inf, -inf, 1, 2};
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    const Tensor x = from_vector(v, {4, 4}, DType::f64).to(dt);
    check_all(x, 1, false);
    check_all(x, 0, false);
    // the same rows made long enough for the warp kernel (each value repeated 16 times)
    check_all(x.unsqueeze(2).expand({4, 4, 16}).reshape({4, 64}), 1, false);
  }
}

TEST_CASE("max/min on cuda: the backward scatters the gradient to the chosen index, on cuda") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t dim : {0, 1, 2}) {
      for (bool keepdim : {false, true}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(dim);
        CAPTURE(keepdim);
        const Tensor x0 = tied_values({6, 45, 7}, 9, dt, false);
        Shape out_shape = x0.shape();
        if (keepdim) out_shape[size_t(dim)] = 1;
        else out_shape.erase(out_shape.begin() + dim);
        const Tensor w = test::test_tensor(out_shape, 10, dt);
        Tensor x = x0.cuda().requires_grad_();
        sum(mul(max(x, dim, keepdim).values, w.cuda())).backward();
        Tensor xh = x0.clone().requires_grad_();
        sum(mul(max(xh, dim, keepdim).values, w)).backward();
        REQUIRE(x.grad().defined());
        CHECK(x.grad().device() == kDev);
        RV_EXPECT_SAME_BITS(x.grad(), xh.grad());
        Tensor y = x0.cuda().requires_grad_();  // reduced through a non-contiguous view
        sum(min(y.transpose(0, 2), 1, keepdim).values).backward();
        Tensor yh = x0.clone().requires_grad_();
        sum(min(yh.transpose(0, 2), 1, keepdim).values).backward();
        RV_EXPECT_SAME_BITS(y.grad(), yh.grad());
      }
    }
  }
}

TEST_CASE("max/min on cuda refuse what the kernels do not take, naming the op") {
  CHECK_THROWS_WITH_AS(max(zeros({3, 4}, DType::i32, kDev), 1),
                       doctest::Contains("max: dtype int32 is not implemented on cuda:0"), std::runtime_error);
  CHECK_THROWS_WITH_AS(argmin(zeros({3, 0}, DType::f32, kDev), 1),
                       doctest::Contains("argmin: cannot reduce over dim 1 of size 0"), std::invalid_argument);
}
