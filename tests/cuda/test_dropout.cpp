// test_dropout.cpp: dropout and drop_path on cuda, with the mask drawn on the device, against the
// CPU ops under the same Generator state (and against a plain reference loop over philox_uniform),
// forward and backward. Skipped (exit 77) without a GPU.
//
// Tolerance: none. The device computes the same Philox words and the same keep test as the CPU,
// and each kept value is x * (1 / keep) rounded once as on the CPU (bf16: in f32, rounded once),
// so outputs, masks and gradients must equal the CPU's bit for bit, and both Generators must
// advance to the same offset.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/same_bits.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

}  // namespace

TEST_CASE("dropout on cuda draws the CPU's mask bit for bit: lengths 1 .. 4097, odd offsets, every p") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (int64_t n : {1, 7, 197, 1000, 4097}) {
      for (double p : {0.1, 0.5, 0.9, 1.0}) {
        for (uint64_t offset : {0, 5, 1000003}) {
          CAPTURE(dtype_name(dt));
          CAPTURE(n);
          CAPTURE(p);
          CAPTURE(offset);
          const Tensor x = test::test_tensor({n}, uint64_t(n), dt);
          Generator gc(42, 3), gd(42, 3);
          gc.set_offset(offset);
          gd.set_offset(offset);
          const Tensor want = dropout(x, p, true, gc);
          const Tensor got = dropout(x.cuda(), p, true, gd);
          CHECK(got.device() == kDev);
          RV_EXPECT_SAME_BITS(got, want);
          RV_EXPECT_SAME_BITS(ne(got, 0.0), ne(want, 0.0));  // the mask itself
          CHECK(gd.offset() == gc.offset());
        }
      }
    }
  }
}

TEST_CASE("dropout on cuda against a plain loop over philox_uniform, and on a non-contiguous input") {
  const int64_t n = 1000;
  const Tensor x = test::test_tensor({n}, 1, DType::f64);
  Generator g(7, 1);
  g.set_offset(9);
  const double p = 0.3, keep = 1.0 - p;
  const Tensor got = dropout(x.cuda(), p, true, g).cpu();
  std::vector<double> want(static_cast<size_t>(n), 0.0);
  const double* xp = x.data<double>();
  for (int64_t i = 0; i < n; ++i)
    want[size_t(i)] = double(philox_uniform(7, 1, 9 + uint64_t(i))) < keep ? xp[i] * (1.0 / keep) : 0.0;
  RV_EXPECT_SAME_BITS(got, from_vector(want, {n}, DType::f64));

  // Elements are numbered in row-major order of the shape, whatever the layout.
  const Tensor base = test::test_tensor({29, 33}, 2);
  const Tensor xt = base.t(), dt = base.cuda().t();  // transposed views on both devices
  Generator gc(11), gd(11);
  RV_EXPECT_SAME_BITS(dropout(dt, 0.25, true, gd), dropout(xt, 0.25, true, gc));
  // Successive calls draw fresh words on both devices alike.
  RV_EXPECT_SAME_BITS(dropout(dt, 0.25, true, gd), dropout(xt, 0.25, true, gc));
  CHECK(gd.offset() == gc.offset());
}

TEST_CASE("drop_path on cuda equals the CPU: one draw per sample, odd sample sizes, the 1-d case") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (const Shape& shape : {Shape{7, 197, 3}, Shape{16, 5}, Shape{9}, Shape{3, 1, 4097}, Shape{0, 4}}) {
      for (double p : {0.1, 0.5, 1.0}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(shape_str(shape));
        CAPTURE(p);
        const Tensor x = test::test_tensor(shape, 3, dt);
        Generator gc(5, 2), gd(5, 2);
        gc.set_offset(6);
        gd.set_offset(6);
        const Tensor want = drop_path(x, p, true, gc);
        const Tensor got = drop_path(x.cuda(), p, true, gd);
        RV_EXPECT_SAME_BITS(got, want);
        CHECK(gd.offset() == gc.offset());
      }
    }
  }
}

TEST_CASE("dropout and drop_path on cuda: the backward regenerates the same mask, on cuda") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    const Tensor x0 = test::test_tensor({6, 197}, 4, dt), w = test::test_tensor({6, 197}, 5, dt);
    Generator gc(3), gd(3);
    Tensor x = x0.cuda().requires_grad_();
    sum(mul(drop_path(dropout(x, 0.2, true, gd), 0.4, true, gd), w.cuda())).backward();
    Tensor xh = x0.clone().requires_grad_();
    sum(mul(drop_path(dropout(xh, 0.2, true, gc), 0.4, true, gc), w)).backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().device() == kDev);
    RV_EXPECT_SAME_BITS(x.grad(), xh.grad());
  }
}

TEST_CASE("dropout on cuda: not training or p = 0 returns x; unsupported dtypes are refused by name") {
  const Tensor x = test::test_tensor({5}, 6).cuda();
  Generator g(1);
  CHECK(dropout(x, 0.5, false, g).same(x));
  CHECK(dropout(x, 0.0, true, g).same(x));
  CHECK(g.offset() == 0);
  CHECK_THROWS_WITH_AS(dropout(zeros({4}, DType::f16, kDev), 0.5, true, g),
                       doctest::Contains("dropout: dtype float16 is not implemented on cuda:0"), std::runtime_error);
}
