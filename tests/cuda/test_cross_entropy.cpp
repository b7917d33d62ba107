// test_cross_entropy.cpp: cross entropy with class-index targets on cuda
// (cuda/kernels/cross_entropy.cu) against the CPU op: (B, K) and (B, K, d1, ...) logits, ignored
// rows, label smoothing, the three reductions, bf16 storage, the gradients that autograd produces
// on the device, the device-only contract (NaN for an out-of-range target), the errors for what
// has no kernel, and determinism. Skipped (exit 77) without a GPU.
//
// Tolerances (against the CPU op on the same input):
//   f32:  rtol 1e-5, atol 1e-6: expf vs the CPU's vectorised exp and different summation orders
//         (~1e-6 relative); the smoothing term sums the logits in double on both sides.
//   f64:  rtol 1e-12, atol 1e-12.
//   bf16: rtol 1e-2, atol 1e-3 (loss and gradient): both compute in f32 and round once to bf16,
//         so a value on a rounding boundary may differ by one bf16 ulp (2^-8 relative).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

struct Tols {
  double rtol, atol;
};
Tols tols(DType dt) {
  if (dt == DType::f64) return {1e-12, 1e-12};
  if (dt == DType::bf16) return {1e-2, 1e-3};
  return {1e-5, 1e-6};
}

// Class indices for positions of `pos_shape` in [0, K), every third one replaced by `ignore`.
Tensor targets(const Shape& pos_shape, int64_t K, int64_t ignore, uint64_t seed) {
  const Tensor u = test::test_tensor(pos_shape, seed, DType::f64, 0.0, double(K));
  Tensor t = empty(pos_shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t c = std::min<int64_t>(K - 1, int64_t(u.data<double>()[i]));
    t.data<int64_t>()[i] = i % 3 == 1 ? ignore : c;
  }
  return t;
}

Shape positions(const Shape& logits_shape) {
  Shape p = logits_shape;
  p.erase(p.begin() + 1);
  return p;
}

const Reduction kReductions[] = {Reduction::none, Reduction::mean, Reduction::sum};

}  // namespace

TEST_CASE("cross_entropy on cuda matches the CPU: shapes, ignored rows, smoothing, reductions, dtypes") {
  const std::vector<Shape> shapes = {{1, 1}, {3, 7}, {5, 197}, {4, 1000}, {2, 4097}, {0, 5},
                                     {9, 256}, {6, 257}, {2, 3, 49}, {2, 5, 3, 4}};
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (const Shape& shape : shapes) {
      for (double smoothing : {0.0, 0.1}) {
        for (int64_t ignore : {int64_t(-100), int64_t(0)}) {  // 0: an in-range class that is ignored
          for (Reduction red : kReductions) {
            CAPTURE(dtype_name(dt));
            CAPTURE(shape_str(shape));
            CAPTURE(smoothing);
            CAPTURE(ignore);
            CAPTURE(reduction_name(red));
            const Tensor x = test::test_tensor(shape, 41, DType::f32, -6.0, 6.0).to(dt);
            const Tensor t = targets(positions(shape), shape[1], ignore, 42);
            CrossEntropyOptions opt;
            opt.ignore_index = ignore;
            opt.label_smoothing = smoothing;
            opt.reduction = red;
            const Tensor want = cross_entropy(x, t, opt);
            const Tensor got = cross_entropy(x.cuda(), t.cuda(), opt);
            CHECK(got.device() == kDev);
            CHECK(got.dtype() == want.dtype());
            const Tols tl = tols(dt);
            RV_EXPECT_CLOSE(got.cpu(), want, .rtol = tl.rtol, .atol = tl.atol);
          }
        }
      }
    }
  }
}

TEST_CASE("cross_entropy gradients through autograd on cuda equal the CPU's") {
  const std::vector<Shape> shapes = {{1, 1}, {3, 7}, {5, 197}, {4, 1000}, {2, 4097}, {0, 5}, {2, 3, 49}};
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (const Shape& shape : shapes) {
      for (double smoothing : {0.0, 0.1}) {
        for (Reduction red : kReductions) {
          // bf16 with none would need a bf16 mul / sum on the device to reduce; its gradient is
          // the same kernel as mean's with a per-row scale, checked in f32 / f64.
          if (dt == DType::bf16 && red == Reduction::none) continue;
          CAPTURE(dtype_name(dt));
          CAPTURE(shape_str(shape));
          CAPTURE(smoothing);
          CAPTURE(reduction_name(red));
          const Tensor x0 = test::test_tensor(shape, 43, DType::f32, -6.0, 6.0).to(dt);
          const Tensor t = targets(positions(shape), shape[1], -100, 44);
          CrossEntropyOptions opt;
          opt.label_smoothing = smoothing;
          opt.reduction = red;
          // Weights for none, so that every row's incoming gradient differs.
          const Tensor w = test::test_tensor(positions(shape), 45, dt == DType::bf16 ? DType::f32 : dt, 0.5, 1.5);
          auto loss_of = [&](const Tensor& x, const Tensor& tt, const Tensor& ww) {
            Tensor l = cross_entropy(x, tt, opt);
            return red == Reduction::none ? sum(mul(l, ww)) : l;
          };
          Tensor xh = x0.clone().requires_grad_();
          loss_of(xh, t, w).backward();
          Tensor xd = x0.cuda().requires_grad_();
          loss_of(xd, t.cuda(), w.cuda()).backward();
          REQUIRE(xd.grad().defined());
          CHECK(xd.grad().device() == kDev);
          CHECK(xd.grad().dtype() == dt);
          const Tols tl = tols(dt);
          RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad().to(dt), .rtol = tl.rtol, .atol = tl.atol);
        }
      }
    }
  }
}

TEST_CASE("cross_entropy on cuda: all rows ignored, unbatched logits, the mean's divisor") {
  const Tensor x = test::test_tensor({4, 10}, 46);
  const Tensor none_valid = full({4}, -100.0, DType::i64);
  CrossEntropyOptions opt;  // mean over nothing: NaN; sum: 0
  CHECK(std::isnan(cross_entropy(x.cuda(), none_valid.cuda(), opt).item()));
  opt.reduction = Reduction::sum;
  CHECK(cross_entropy(x.cuda(), none_valid.cuda(), opt).item() == 0.0);
  // Unbatched (K) logits with a 0-d target.
  const Tensor t0 = full({}, 3.0, DType::i64);
  RV_EXPECT_CLOSE(cross_entropy(x.select(0, 1).cuda(), t0.cuda()).cpu(), cross_entropy(x.select(0, 1), t0),
                  .rtol = 1e-5, .atol = 1e-6);
  // The mean divides by the non-ignored count (2 of 4 here), computed on the device.
  Tensor t = empty({4}, DType::i64);
  const int64_t tv[4] = {1, -100, 7, -100};
  for (int i = 0; i < 4; ++i) t.data<int64_t>()[i] = tv[i];
  CrossEntropyOptions mean_opt;
  const double m = cross_entropy(x.cuda(), t.cuda(), mean_opt).item();
  CrossEntropyOptions sum_opt;
  sum_opt.reduction = Reduction::sum;
  const double s = cross_entropy(x.cuda(), t.cuda(), sum_opt).item();
  CHECK(m == doctest::Approx(s / 2).epsilon(1e-6));
}

TEST_CASE("cross_entropy on cuda: an out-of-range target gives NaN; unsupported options throw clearly") {
  const Tensor x = test::test_tensor({3, 5}, 47);
  Tensor t = full({3}, 1.0, DType::i64);
  t.data<int64_t>()[2] = 5;  // K = 5: out of range (the CPU throws; the device reports NaN, no host sync)
  CrossEntropyOptions opt;
  opt.reduction = Reduction::none;
  const Tensor l = cross_entropy(x.cuda(), t.cuda(), opt).cpu();
  CHECK(std::isfinite(l.data<float>()[0]));
  CHECK(std::isnan(l.data<float>()[2]));
  CHECK(std::isnan(cross_entropy(x.cuda(), t.cuda()).item()));

  const Tensor good = full({3}, 1.0, DType::i64);
  CrossEntropyOptions wopt;
  wopt.weight = ones({5});
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), good.cuda(), wopt),
                    doctest::Contains("cross_entropy: class weights (the weight option) are not implemented on"));
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), test::test_tensor({3, 5}, 50).cuda()),
                    doctest::Contains("cross_entropy: soft (probability) targets are not implemented on cuda:0"));
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), good),
                    doctest::Contains("cross_entropy: logits on cuda:0 and target on cpu"));
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), good.to(DType::i32).cuda()),
                    doctest::Contains("cross_entropy: target dtype int32 is not implemented on cuda:0 yet"));
  CHECK_THROWS_WITH(cross_entropy(x.to(DType::f16).cuda(), good.cuda()),
                    doctest::Contains("cross_entropy: dtype float16 is not implemented on cuda:0 yet"));
}

TEST_CASE("cross_entropy on cuda is deterministic (forward and backward, bit for bit)") {
  const Tensor x0 = test::test_tensor({256, 1000}, 48, DType::f32, -6.0, 6.0);
  const Tensor t = targets({256}, 1000, -100, 49).cuda();
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.1;
  std::vector<double> loss[2], grad[2];
  for (int run = 0; run < 2; ++run) {
    Tensor x = x0.cuda().requires_grad_();
    Tensor l = cross_entropy(x, t, opt);
    loss[run] = l.cpu().to_double_vector();
    l.backward();
    grad[run] = x.grad().cpu().to_double_vector();
  }
  CHECK(loss[0] == loss[1]);
  CHECK(grad[0] == grad[1]);
}
