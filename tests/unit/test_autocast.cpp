// Autocast: the guards' state and nesting, the op policy (which ops run in bf16, which in f32,
// which follow their inputs), gradients through the casts (f32 parameters get f32 gradients),
// and the weight cast cache (one entry per parameter per region, cleared at the region's end).
#include <cmath>
#include <thread>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/loss.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "tests/support/check.h"

using namespace rv;
using autocast::AutocastGuard;

namespace {

float round_bf16(float v) { return bf16_to_float(float_to_bf16(v)); }

// y[r][o] = round_bf16(sum_i bf16(x[r][i]) * bf16(w[o][i]) + bf16(b[o])): what autocast's linear
// computes (inputs rounded to bf16, f32 accumulation, one rounding of the output).
std::vector<float> ref_linear_bf16(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t R = x.size(0), I = x.size(1), O = w.size(0);
  auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<float> y(size_t(R * O));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < O; ++o) {
      double acc = round_bf16(bv[size_t(o)]);
      for (int64_t i = 0; i < I; ++i)
        acc += double(round_bf16(xv[size_t(r * I + i)])) * double(round_bf16(wv[size_t(o * I + i)]));
      y[size_t(r * O + o)] = round_bf16(float(acc));
    }
  return y;
}

}  // namespace

TEST_CASE("autocast state: off by default, guards nest and restore, disabled inside, per thread") {
  CHECK(!autocast::is_enabled());
  {
    AutocastGuard outer(DType::bf16);
    CHECK(autocast::is_enabled());
    CHECK(autocast::lower_dtype() == DType::bf16);
    {
      autocast::DisabledGuard off;
      CHECK(!autocast::is_enabled());
      {
        AutocastGuard inner(DType::f16);
        CHECK(autocast::is_enabled());
        CHECK(autocast::lower_dtype() == DType::f16);
      }
      CHECK(!autocast::is_enabled());
    }
    CHECK(autocast::is_enabled());
    CHECK(autocast::lower_dtype() == DType::bf16);
    bool other_thread_enabled = true;
    std::thread([&] { other_thread_enabled = autocast::is_enabled(); }).join();
    CHECK(!other_thread_enabled);  // the state is per thread, as grad mode
  }
  CHECK(!autocast::is_enabled());
}

TEST_CASE("autocast refuses a dtype that is not bf16 or f16, naming it") {
  CHECK_THROWS_WITH_AS(AutocastGuard(DType::f32), doctest::Contains("AutocastGuard: expected dtype bfloat16 or float16, got float32"),
                       std::invalid_argument);
  CHECK(!autocast::is_enabled());
}

TEST_CASE("autocast linear: bf16 output, values of bf16 inputs with f32 accumulation") {
  Tensor x = test::test_tensor({5, 7}, 1), w = test::test_tensor({3, 7}, 2), b = test::test_tensor({3}, 3);
  AutocastGuard amp;
  Tensor y = linear(x, w, b);
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y.to(DType::f32), from_vector(ref_linear_bf16(x, w, b), {5, 3}), .rtol = 1e-2, .atol = 1e-2);
  // the f32 values themselves differ by bf16 rounding: the policy did round the inputs
  Tensor y32 = [&] {
    autocast::DisabledGuard off;
    return linear(x, w, b);
  }();
  CHECK(y32.dtype() == DType::f32);
  RV_EXPECT_CLOSE(y.to(DType::f32), y32, .rtol = 2e-2, .atol = 2e-2);
}

TEST_CASE("autocast lower-precision ops: matmul, conv2d, conv_transpose2d, attention give bf16") {
  AutocastGuard amp;
  CHECK(matmul(test::test_tensor({4, 6}, 1), test::test_noncontiguous({6, 5}, 2)).dtype() == DType::bf16);
  Tensor x = test::test_tensor({2, 3, 5, 5}, 3);
  CHECK(conv2d(x, test::test_tensor({4, 3, 2, 2}, 4), test::test_tensor({4}, 5)).dtype() == DType::bf16);
  CHECK(conv_transpose2d(x, test::test_tensor({3, 2, 2, 2}, 6)).dtype() == DType::bf16);
  Tensor q = test::test_tensor({1, 2, 5, 4}, 7), k = test::test_tensor({1, 2, 6, 4}, 8);
  Tensor v = test::test_tensor({1, 2, 6, 4}, 9);
  Tensor bias = test::test_tensor({2, 5, 6}, 10);  // f32 bias with bf16 q/k/v: cast with them
  CHECK(scaled_dot_product_attention(q, k, v, bias).dtype() == DType::bf16);
  // integers are never cast; the op's own error still names it
  CHECK_THROWS_WITH_AS(matmul(ones({2, 2}, DType::i64), ones({2, 2})), doctest::Contains("matmul: expected float"),
                       std::invalid_argument);
}

TEST_CASE("autocast f32 ops: softmax, norms, losses, sum, exp/log/pow/rsqrt give f32 from bf16 inputs") {
  Tensor xb = test::test_tensor({4, 6}, 1).to(DType::bf16);
  Tensor pos = test::test_tensor({4, 6}, 2, DType::f32, 0.5, 2.0).to(DType::bf16);
  AutocastGuard amp;
  CHECK(softmax(xb, -1).dtype() == DType::f32);
  CHECK(log_softmax(xb, 0).dtype() == DType::f32);
  CHECK(layer_norm(xb, {6}, ones({6}), zeros({6})).dtype() == DType::f32);
  CHECK(layer_norm(xb, {6}).dtype() == DType::f32);
  Tensor img = test::test_tensor({2, 4, 3, 3}, 3).to(DType::bf16);
  CHECK(group_norm(img, 2, ones({4}), zeros({4})).dtype() == DType::f32);
  Tensor rm = zeros({4}), rv = ones({4});
  CHECK(batch_norm(img, rm, rv, ones({4}), zeros({4}), true).dtype() == DType::f32);
  CHECK(rm.dtype() == DType::f32);  // the running statistics stay f32 buffers
  CHECK(cross_entropy(xb, from_vector(std::vector<int64_t>{0, 5, 2, 1}, {4})).dtype() == DType::f32);
  CHECK(mse_loss(xb, zeros({4, 6})).dtype() == DType::f32);
  CHECK(l1_loss(xb, zeros({4, 6}, DType::bf16)).dtype() == DType::f32);
  CHECK(smooth_l1_loss(xb, zeros({4, 6})).dtype() == DType::f32);
  CHECK(binary_cross_entropy_with_logits(xb, zeros({4, 6})).dtype() == DType::f32);
  CHECK(sum(xb).dtype() == DType::f32);
  CHECK(exp(xb).dtype() == DType::f32);
  CHECK(log(pos).dtype() == DType::f32);
  CHECK(rsqrt(pos).dtype() == DType::f32);
  CHECK(pow(xb, 2.0).dtype() == DType::f32);
  CHECK(pow(pos, xb).dtype() == DType::f32);
  // f32 values: the softmax of the bf16 values, computed and kept in f32 (no output rounding)
  RV_EXPECT_CLOSE(softmax(xb, -1), [&] {
    autocast::DisabledGuard off;
    return softmax(xb.to(DType::f32), -1);
  }(), .rtol = 0, .atol = 0);
}

TEST_CASE("autocast: other ops follow their inputs; mixed bf16/f32 promotes to f32") {
  Tensor xb = test::test_tensor({3, 4}, 1).to(DType::bf16), xf = test::test_tensor({3, 4}, 2);
  AutocastGuard amp;
  CHECK(gelu(xb).dtype() == DType::bf16);
  CHECK(relu(xf).dtype() == DType::f32);
  CHECK(mean(xb).dtype() == DType::bf16);  // torch keeps mean out of its f32 list (sum is in it)
  CHECK(add(xb, xf).dtype() == DType::f32);
  CHECK(mul(xb, xb).dtype() == DType::bf16);
  CHECK(add(xb, xf.unsqueeze(0)).dtype() == DType::f32);  // broadcasting too
  // cat promotes mixed floats under autocast (an f32 CLS token before bf16 patch tokens), with
  // the gradient reaching each input in its own dtype
  Tensor cls = test::test_tensor({1, 4}, 3).requires_grad_();
  Tensor c = cat({cls, xb}, 0);
  CHECK(c.dtype() == DType::f32);
  RV_EXPECT_CLOSE(c.narrow(0, 1, 3), xb.to(DType::f32), .rtol = 0, .atol = 0);
  CHECK(cat({xb, xb}, 0).dtype() == DType::bf16);
  sum(c).backward();
  CHECK(cls.grad().dtype() == DType::f32);
  CHECK_THROWS_WITH(cat({xf, ones({3, 4}, DType::i64)}, 0), doctest::Contains("cat does not promote"));
}

TEST_CASE("autocast leaves f64 alone: an f64 gradcheck under the guard still holds") {
  AutocastGuard amp;
  Tensor x = test::test_tensor({3, 4}, 1, DType::f64).requires_grad_();
  Tensor w = test::test_tensor({2, 4}, 2, DType::f64).requires_grad_();
  CHECK(linear(x, w).dtype() == DType::f64);
  CHECK(softmax(x, -1).dtype() == DType::f64);
  auto f = [](const std::vector<Tensor>& in) { return softmax(linear(in[0], in[1]), -1); };
  const std::vector<Tensor> inputs{x, w};
  RV_GRADCHECK(f, inputs);
}

TEST_CASE("autocast gradients: f32 parameters get f32 gradients through the casts") {
  Tensor x = test::test_tensor({6, 5}, 1);
  Tensor w = test::test_tensor({4, 5}, 2).requires_grad_();
  Tensor b = test::test_tensor({4}, 3).requires_grad_();
  Tensor loss;
  {
    AutocastGuard amp;
    Tensor y = linear(x, w, b);        // bf16
    loss = sum(mul(y, y));             // sum runs in f32
    CHECK(loss.dtype() == DType::f32);
  }
  loss.backward();  // outside the guard, as torch
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == DType::f32);
  CHECK(b.grad().dtype() == DType::f32);
  // reference: dL/dy = 2y (y the bf16 output, gradient rounded to bf16 as it enters linear's
  // bf16 backward), dW = gᵀ · x_bf16, db = column sums of g, each rounded to bf16 once
  auto yv = ref_linear_bf16(x, w.detach(), b.detach());
  auto xv = x.to_vector<float>();
  std::vector<float> dw(20), db(4);
  for (int64_t o = 0; o < 4; ++o) {
    double acc_b = 0;
    for (int64_t i = 0; i < 5; ++i) {
      double acc = 0;
      for (int64_t r = 0; r < 6; ++r) acc += double(round_bf16(2 * yv[size_t(r * 4 + o)])) * round_bf16(xv[size_t(r * 5 + i)]);
      dw[size_t(o * 5 + i)] = round_bf16(float(acc));
    }
    for (int64_t r = 0; r < 6; ++r) acc_b += round_bf16(2 * yv[size_t(r * 4 + o)]);
    db[size_t(o)] = round_bf16(float(acc_b));
  }
  RV_EXPECT_CLOSE(w.grad(), from_vector(dw, {4, 5}), .rtol = 1e-2, .atol = 1e-2);
  RV_EXPECT_CLOSE(b.grad(), from_vector(db, {4}), .rtol = 1e-2, .atol = 1e-2);
}

TEST_CASE("autocast backward inside the guard is not autocast (same gradients as outside)") {
  Tensor x = test::test_tensor({6, 5}, 1);
  Tensor w = test::test_tensor({4, 5}, 2).requires_grad_();
  auto run = [&](bool backward_inside) {
    w.zero_grad();
    AutocastGuard amp;
    Tensor loss = sum(softmax(linear(x, w), -1) * test::test_tensor({6, 4}, 5));
    if (backward_inside) {
      loss.backward();
      return w.grad();
    }
    return loss;
  };
  Tensor inside = run(true);
  Tensor loss = run(false);
  loss.backward();
  CHECK(inside.dtype() == DType::f32);
  RV_EXPECT_CLOSE(inside, w.grad(), .rtol = 0, .atol = 0);
}

TEST_CASE("autocast weight cache: one entry per parameter per region, shared by every reader, then cleared") {
  Tensor w = test::test_tensor({4, 5}, 2).requires_grad_();
  Tensor w2 = test::test_tensor({5, 5}, 3).requires_grad_();
  Tensor x = test::test_tensor({3, 5}, 1);
  Tensor single_grad;
  {
    Tensor loss;
    {
      AutocastGuard amp;
      loss = sum(linear(x, w));
    }
    loss.backward();
    single_grad = w.grad();
    w.zero_grad();
  }
  CHECK(autocast::cache_size() == 0);
  {
    AutocastGuard amp;
    Tensor h = linear(x, w2);                // w2 cached
    Tensor y1 = linear(x, w), y2 = linear(x, w);  // w cached once, read twice
    CHECK(autocast::cache_size() == 2);
    CHECK(y1.dtype() == DType::bf16);
    linear(h, w2);                           // w2 read again: still 2 entries
    CHECK(autocast::cache_size() == 2);
    {
      AutocastGuard nested;                  // an inner region shares the outer cache
      linear(x, w);
      CHECK(autocast::cache_size() == 2);
    }
    {
      autocast::DisabledGuard off;           // its end does not clear either
    }
    CHECK(autocast::cache_size() == 2);
    // non-parameters are not cached: an activation, a leaf without grad, an f64 parameter
    linear(x, x.detach().narrow(0, 0, 3));
    Tensor wd = test::test_tensor({4, 5}, 4, DType::f64).requires_grad_();
    linear(x.to(DType::f64), wd);
    CHECK(autocast::cache_size() == 2);
    // both readers of the one cast send their gradient back to w
    Tensor loss = sum(y1) + sum(y2);
    autocast::DisabledGuard off;
    loss.backward();
  }
  CHECK(autocast::cache_size() == 0);  // the outermost guard ended
  RV_EXPECT_CLOSE(w.grad(), mul(single_grad, 2.0), .rtol = 0, .atol = 0);
}

TEST_CASE("autocast weight cache: a cast made under no_grad is not reused with grad on; in-place updates recast") {
  Tensor w = test::test_tensor({4, 5}, 2).requires_grad_();
  Tensor x = test::test_tensor({3, 5}, 1);
  AutocastGuard amp;
  {
    autograd::NoGradGuard ng;
    CHECK(!linear(x, w).requires_grad());
  }
  Tensor y = linear(x, w);  // must have a graph back to w
  CHECK(y.requires_grad());
  CHECK(autocast::cache_size() == 1);
  Tensor before = linear(x, w).detach().to(DType::f32);
  {
    autograd::NoGradGuard ng;
    w.fill_(0.0);  // an optimizer step inside the region: the cached cast is stale
  }
  Tensor after = linear(x, w).detach().to(DType::f32);
  CHECK(sum(abs(before)).item() > 0);
  CHECK(sum(abs(after)).item() == 0);
}
