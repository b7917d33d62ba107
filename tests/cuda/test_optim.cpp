// test_optim.cpp: the fused multi-tensor AdamW step, the multi-tensor gradient norm and
// clip_grad_norm_ / clip_grad_value_ on cuda, against the same optimizer / functions on the
// CPU. Skipped (exit 77) without a GPU.
//
// Tolerances:
//   AdamW: the kernel does the CPU's operations in the CPU's order with the same rounded
//     scalars and no fused multiply-adds, but GCC may fuse the CPU's lerp and v * b2 + w2 g g
//     (it contracts C++ under -march=native): m and v may differ by an ulp of their terms
//     (~0.1 |g| <= 0.1), which cancellation in m can make large relative to m. So, after 3
//     steps: f32 rtol 1e-6 + atol 1e-7; f64 rtol 1e-13 + atol 1e-15.
//   norm: sums of squares in double on both sides, in different orders: rtol 1e-12.
//   clipped gradients: the coefficient comes from that norm, so f32 gradients may differ by an
//     ulp: rtol 1e-6 (f64: 1e-12). Unclipped gradients and clip_grad_value_ are exact.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);
const Shape kShapes[] = {{1}, {7}, {1000}, {4097}, {33, 65}};

// Leaves of kShapes with test values on `device`.
std::vector<Tensor> make_params(DType dt, Device device, uint64_t seed) {
  std::vector<Tensor> ps;
  for (const Shape& s : kShapes) ps.push_back(test::test_tensor(s, seed++, dt).to(device).requires_grad_());
  return ps;
}

void set_grads(std::vector<Tensor>& ps, DType dt, uint64_t seed, double scale = 1.0) {
  for (Tensor& p : ps) {
    Tensor g = mul(test::test_tensor(p.shape(), seed++, dt), scale).to(p.device());
    p.set_grad(g);
  }
}

void expect_same_params(const std::vector<Tensor>& dev, const std::vector<Tensor>& host, test::Tol tol) {
  for (size_t i = 0; i < dev.size(); ++i) {
    CAPTURE(i);
    CHECK(dev[i].device() == kDev);
    RV_EXPECT_CLOSE(dev[i].detach().cpu(), host[i].detach(), .rtol = tol.rtol, .atol = tol.atol);
  }
}

}  // namespace

TEST_CASE("AdamW on cuda: 3 steps over odd sizes and two groups (weight decay, lr) match the CPU optimizer") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool amsgrad : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(amsgrad);
      const test::Tol tol = dt == DType::f32 ? test::Tol{1e-6, 1e-7} : test::Tol{1e-13, 1e-15};
      std::vector<Tensor> dp = make_params(dt, kDev, 1), hp = make_params(dt, cpu_device(), 1);
      // Group 0: the first two parameters, no decay and their own lr; group 1: the rest.
      auto groups = [](const std::vector<Tensor>& ps) {
        optim::ParamGroup a({ps[0], ps[1]}), b({ps[2], ps[3], ps[4]});
        a.weight_decay = 0.0;
        a.lr = 3e-2;
        return std::vector<optim::ParamGroup>{a, b};
      };
      const optim::AdamWOptions o{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05,
                                  .amsgrad = amsgrad};
      optim::AdamW dopt(groups(dp), o), hopt(groups(hp), o);
      for (int step = 0; step < 3; ++step) {
        CAPTURE(step);
        // Shrinking gradients, so amsgrad's max differs from v in the later steps.
        set_grads(dp, dt, 100 + 10 * step, 1.0 / (1 + 3 * step));
        set_grads(hp, dt, 100 + 10 * step, 1.0 / (1 + 3 * step));
        if (step == 1) {  // a parameter without a gradient is skipped (its step count too)
          dp[1].set_grad(Tensor());
          hp[1].set_grad(Tensor());
        }
        dopt.step();
        hopt.step();
        expect_same_params(dp, hp, tol);
      }
      // The moments live on the device and agree as well.
      const optim::StateDict ds = dopt.state_dict(), hs = hopt.state_dict();
      REQUIRE(ds.size() == hs.size());
      for (size_t i = 0; i < ds.size(); ++i) {
        const auto& [dname, dvalue] = ds.items()[i];
        CAPTURE(dname);
        CHECK(dname == hs.items()[i].first);
        RV_EXPECT_CLOSE(dvalue.cpu(), hs.items()[i].second, .rtol = tol.rtol, .atol = tol.atol);
      }
    }
  }
}

TEST_CASE("AdamW on cuda: ~150 parameters of many sizes in one step (the chunk table) match the CPU") {
  std::vector<Tensor> dp, hp;
  for (int i = 0; i < 150; ++i) {
    const int64_t n = (i * 7919) % 40000 + (i % 3 == 0 ? 0 : 1);  // includes 0-element parameters
    const Tensor v = test::test_tensor({n}, 200 + i);
    dp.push_back(v.cuda().requires_grad_());
    hp.push_back(v.clone().requires_grad_());
  }
  set_grads(dp, DType::f32, 1000);
  set_grads(hp, DType::f32, 1000);
  optim::AdamW dopt({dp}), hopt({hp});
  dopt.step();
  hopt.step();
  expect_same_params(dp, hp, {1e-6, 1e-7});
}

TEST_CASE("clip_grad_norm_ on cuda: the norm and the clipped gradients match the CPU") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (double max_norm : {0.5, 1e6}) {  // clips / does not clip
      CAPTURE(dtype_name(dt));
      CAPTURE(max_norm);
      std::vector<Tensor> dp = make_params(dt, kDev, 1), hp = make_params(dt, cpu_device(), 1);
      set_grads(dp, dt, 50);
      set_grads(hp, dt, 50);
      const double dn = optim::clip_grad_norm_(dp, max_norm), hn = optim::clip_grad_norm_(hp, max_norm);
      CHECK(dn == doctest::Approx(hn).epsilon(1e-12));
      const double rtol = max_norm > 1e3 ? 0.0 : (dt == DType::f32 ? 1e-6 : 1e-12);
      for (size_t i = 0; i < dp.size(); ++i) {
        CAPTURE(i);
        CHECK(dp[i].grad().device() == kDev);
        RV_EXPECT_CLOSE(dp[i].grad().cpu(), hp[i].grad(), .rtol = rtol, .atol = 0);
      }
    }
  }
  // Many tensors (several chunks each, and empty ones): the norm, and the same bits on a rerun.
  std::vector<Tensor> dp, hp;
  for (int i = 0; i < 40; ++i) {
    const Tensor v = test::test_tensor({(i * 15551) % 70000}, 300 + i);
    dp.push_back(zeros(v.shape(), DType::f32, kDev).requires_grad_());
    hp.push_back(zeros(v.shape()).requires_grad_());
    Tensor a = dp.back(), b = hp.back();
    a.set_grad(v.cuda());
    b.set_grad(v.clone());
  }
  const double n1 = optim::clip_grad_norm_(dp, 1e9), n2 = optim::clip_grad_norm_(dp, 1e9);
  CHECK(n1 == n2);
  CHECK(n1 == doctest::Approx(optim::clip_grad_norm_(hp, 1e9)).epsilon(1e-12));
}

TEST_CASE("clip_grad_norm_ on cuda: non-finite norms, other norm types, clip_grad_value_") {
  std::vector<Tensor> dp = make_params(DType::f32, kDev, 1);
  set_grads(dp, DType::f32, 60);
  Tensor bad = from_vector(std::vector<double>{1.0, std::numeric_limits<double>::infinity()}, {2}).cuda();
  Tensor extra = zeros({2}, DType::f32, kDev).requires_grad_();
  extra.set_grad(bad);
  std::vector<Tensor> with_inf = dp;
  with_inf.push_back(extra);
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(with_inf, 1.0, 2.0, /*error_if_nonfinite=*/true),
                       doctest::Contains("non-finite"), std::runtime_error);
  CHECK(std::isinf(optim::clip_grad_norm_(with_inf, 1.0)));
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(dp, 1.0, 1.0), doctest::Contains("norm_type"), std::runtime_error);

  std::vector<Tensor> hp = make_params(DType::f32, cpu_device(), 1);
  set_grads(dp, DType::f32, 70);
  set_grads(hp, DType::f32, 70);
  optim::clip_grad_value_(dp, 0.3);
  optim::clip_grad_value_(hp, 0.3);
  for (size_t i = 0; i < dp.size(); ++i) RV_EXPECT_CLOSE(dp[i].grad().cpu(), hp[i].grad(), .rtol = 0, .atol = 0);
}
