// test_convert.cpp: dtype conversion on cuda (Tensor::to(DType), copy_ between dtypes) against
// the CPU's conversion of the same tensor, for every pair of the eight dtypes. Skipped (exit 77)
// without a GPU.
//
// Tolerance: none. Both sides round the same value the same way (bf16 / f16 to nearest even,
// NaN kept, float -> integer truncated), so every result must equal the CPU's bit for bit.
// Float -> integer is only tested on values that fit the target (C++ leaves the others
// undefined; the kernel follows x86 there, documented in cuda/kernels/convert_cast.cuh).
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
const DType kAll[] = {DType::f32, DType::f64, DType::bf16, DType::f16,
                      DType::i32, DType::i64, DType::u8,  DType::boolean};

// Values of dtype `dt` on the host that convert to every dtype without undefined behaviour:
// in [0, 250) when either side is u8, else in [-300, 300); bool: a mix of true and false.
Tensor in_range_source(const Shape& shape, DType src, DType dst, uint64_t seed) {
  const bool unsigned_side = src == DType::u8 || dst == DType::u8;
  const Tensor base = test::test_tensor(shape, seed, DType::f64, unsigned_side ? 0.0 : -300.0, 250.0);
  if (src == DType::boolean) return lt(base, 100.0);
  return base.to(src);
}

}  // namespace

TEST_CASE("to(dtype) on cuda equals the CPU for every pair of dtypes: odd lengths, 0-d, empty") {
  const Shape shapes[] = {{1}, {7}, {197}, {4097}, {3, 1, 5}, {}, {0, 5}};
  for (DType src : kAll) {
    for (DType dst : kAll) {
      for (const Shape& shape : shapes) {
        CAPTURE(dtype_name(src));
        CAPTURE(dtype_name(dst));
        CAPTURE(shape_str(shape));
        const Tensor x = in_range_source(shape, src, dst, 11);
        const Tensor got = x.cuda().to(dst);
        CHECK(got.device() == kDev);
        CHECK(got.dtype() == dst);
        RV_EXPECT_SAME_BITS(got, x.to(dst));
      }
    }
  }
}

TEST_CASE("to(dtype) on cuda reads non-contiguous sources (transposed, stepped, expanded)") {
  for (DType src : kAll) {
    for (DType dst : kAll) {
      if (src == dst) continue;
      CAPTURE(dtype_name(src));
      CAPTURE(dtype_name(dst));
      const Tensor x = in_range_source({9, 14}, src, dst, 5);
      const Tensor d = x.cuda();
      RV_EXPECT_SAME_BITS(d.t().to(dst), x.t().to(dst));
      RV_EXPECT_SAME_BITS(d.slice(1, 1, 14, 3).to(dst), x.slice(1, 1, 14, 3).to(dst));
      const Tensor col = in_range_source({9, 1}, src, dst, 6);
      RV_EXPECT_SAME_BITS(col.cuda().expand({9, 33}).to(dst), col.expand({9, 33}).to(dst));
    }
  }
}

TEST_CASE("float conversions on cuda round special values exactly as the CPU") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {
      nan, -nan, inf, -inf, 0.0, -0.0, 1.0,
      1.0 + std::ldexp(1.0, -8),       // a bf16 tie: rounds to even (down)
      1.0 + 3 * std::ldexp(1.0, -8),   // a bf16 tie: rounds to even (up)
      1.0 + std::ldexp(1.0, -11),      // an f16 tie
      65504.0, 65519.99, 65520.0, 1e5, -1e5,  // f16's largest, just below / at the inf threshold
      std::ldexp(1.0, -24), std::ldexp(1.0, -25), 3 * std::ldexp(1.0, -25), 1e-8, -6e-8,  // f16 subnormals, ties
      1e-40, -1e-45, 3.4e38, 3.5e38, 1e300, -1e300, 1e-320,  // f32 subnormals, f32 overflow
      0.1, -2.5, 1.0 / 3.0, 1.0 + 1e-9,  // a double that rounds twice on the way to bf16
      std::ldexp(1.0, 24) + 1.0, -7.75,
  };
  const int64_t n = int64_t(v.size());
  const Tensor base = from_vector(v, {n}, DType::f64);
  for (DType src : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
    const Tensor x = base.to(src);
    for (DType dst : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::boolean}) {
      CAPTURE(dtype_name(src));
      CAPTURE(dtype_name(dst));
      RV_EXPECT_SAME_BITS(x.cuda().to(dst), x.to(dst));
    }
  }
}

TEST_CASE("integer conversions on cuda: wrap-around, big values, truncation toward zero") {
  const std::vector<int64_t> v = {0, 1, -1, 127, 128, 255, 256, -129, 2147483647, 2147483648LL, -2147483649LL,
                                  (int64_t(1) << 53) + 1, -(int64_t(1) << 62), 16777217, 65505,
                                  std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  const Tensor x = from_vector(v, {int64_t(v.size())});
  for (DType dst : kAll) {
    CAPTURE(dtype_name(dst));
    RV_EXPECT_SAME_BITS(x.cuda().to(dst), x.to(dst));
    RV_EXPECT_SAME_BITS(x.to(DType::i32).cuda().to(dst), x.to(DType::i32).to(dst));
  }
  // float -> integer truncates toward zero (values that fit every integer type)
  const Tensor f = from_vector(std::vector<double>{2.9, -2.9, 0.5, -0.5, 100.99, -0.0, 126.5}, {7}, DType::f64);
  for (DType src : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
    for (DType dst : {DType::i32, DType::i64}) {
      CAPTURE(dtype_name(src));
      CAPTURE(dtype_name(dst));
      RV_EXPECT_SAME_BITS(f.to(src).cuda().to(dst), f.to(src).to(dst));
    }
  }
}

TEST_CASE("copy_ between dtypes on cuda: into a stepped view, from a broadcast source, from the host") {
  const Tensor src = test::test_tensor({5, 1}, 3, DType::f32, -4.0, 4.0);
  for (DType dst : {DType::bf16, DType::f64, DType::i32, DType::f16}) {
    CAPTURE(dtype_name(dst));
    Tensor want = zeros({5, 12}, dst);
    Tensor got = zeros({5, 12}, dst, kDev);
    want.slice(1, 0, 12, 2).copy_(src);         // a stepped view, broadcast along the row
    got.slice(1, 0, 12, 2).copy_(src.cuda());
    RV_EXPECT_SAME_BITS(got, want);
    // A host source of the view's shape: converted on the host, then moved.
    const Tensor full = test::test_tensor({5, 6}, 4, DType::f32, -4.0, 4.0);
    Tensor want_full = zeros({5, 12}, dst), got_full = zeros({5, 12}, dst, kDev);
    want_full.slice(1, 1, 12, 2).copy_(full);
    got_full.slice(1, 1, 12, 2).copy_(full);
    RV_EXPECT_SAME_BITS(got_full, want_full);
  }
}

TEST_CASE("to(dtype) on cuda is differentiable between float dtypes, the gradient converted back on cuda") {
  const Tensor x0 = test::test_tensor({6, 7}, 9, DType::f32);
  Tensor x = x0.cuda().requires_grad_();
  Tensor w = test::test_tensor({6, 7}, 10, DType::f64).cuda();
  sum(mul(x.to(DType::f64), w)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == kDev);
  CHECK(x.grad().dtype() == DType::f32);
  RV_EXPECT_SAME_BITS(x.grad(), w.cpu().to(DType::f32));
}
