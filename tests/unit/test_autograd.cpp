// Autograd: leaves, accumulation, broadcasting, views, graph freeing, in-place refusal, RNG.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"
#include "tests/support/check.h"

using namespace rv;

TEST_CASE("gradients of a small expression, with broadcasting") {
  Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = from_vector(std::vector<float>{10, 20, 30}, {3}).requires_grad_();
  Tensor loss = sum(mul(a, b) + a);  // d/da = b + 1, d/db = column sums of a
  loss.backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{11, 21, 31, 11, 21, 31});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{5, 7, 9});
  CHECK(loss.item() == doctest::Approx(1*10+2*20+3*30+4*10+5*20+6*30 + 21));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = full({3}, 2.0).requires_grad_();
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{6, 6, 6});
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("a tensor used twice sums both paths") {
  Tensor x = full({2}, 3.0).requires_grad_();
  Tensor y = mul(x, x);  // dy/dx = 2x
  sum(y + x).backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{7, 7});
}

TEST_CASE("gradients flow through views") {
  Tensor x = arange(0.0, 6.0, 1.0).view({2, 3}).detach().requires_grad_();
  Tensor v = x.transpose(0, 1).narrow(0, 1, 2).reshape({4});  // elements x[:,1:] in (col,row) order
  Tensor w = from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  sum(v * w).backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 1, 3, 0, 2, 4});
  Tensor y = full({1, 3}, 1.0).requires_grad_();
  sum(y.expand({4, 3}) * 2.0).backward();
  CHECK(y.grad().to_vector<float>() == std::vector<float>{8, 8, 8});
  Tensor z = zeros({3, 4}).requires_grad_();
  sum(z.select(1, 2) * 5.0).backward();
  CHECK(z.grad().to_vector<float>()[2] == 5.0f);
  CHECK(z.grad().to_vector<float>()[3] == 0.0f);
}

TEST_CASE("backward with an explicit output gradient, and its shape check") {
  Tensor x = ones({2, 2}).requires_grad_();
  Tensor y = x * 4.0;
  CHECK_THROWS_WITH(y.backward(), doctest::Contains("one-element"));
  CHECK_THROWS_WITH(y.backward(ones({3})), doctest::Contains("does not match"));
  y.backward(full({2, 2}, 0.5));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 2, 2, 2});
}

TEST_CASE("the graph is freed after backward") {
  Tensor x = ones({2}).requires_grad_();
  Tensor loss = sum(x * x);
  loss.backward();
  CHECK_THROWS_WITH(loss.backward(), doctest::Contains("already freed"));
}

TEST_CASE("NoGradGuard and detach stop recording") {
  Tensor x = ones({2}).requires_grad_();
  {
    autograd::NoGradGuard ng;
    Tensor y = x * 2.0;
    CHECK(!y.requires_grad());
  }
  Tensor d = (x * 2.0).detach();
  CHECK(!d.requires_grad());
  CHECK(d.is_leaf());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("in-place writes the graph needs are refused, naming the op") {
  Tensor w = ones({3}).requires_grad_();
  CHECK_THROWS_WITH(w.fill_(0.0), doctest::Contains("fill_"));
  Tensor x = full({3}, 2.0);  // does not require grad, but mul saves it for w's gradient
  Tensor loss = sum(mul(w, x));
  x.fill_(5.0);
  CHECK_THROWS_WITH(loss.backward(), doctest::Contains("backward of 'mul'"));
  // parameter updates under NoGradGuard are fine
  {
    autograd::NoGradGuard ng;
    add_(w, ones({3}), -0.5);
  }
  CHECK(w.to_vector<float>() == std::vector<float>{0.5f, 0.5f, 0.5f});
}

TEST_CASE("integer tensors cannot require grad") {
  CHECK_THROWS_WITH(arange(3).requires_grad_(), doctest::Contains("only float tensors"));
}

TEST_CASE("Philox 4x32-10 matches the Random123 known-answer vectors") {
  auto r = philox4x32_10({0, 0, 0, 0}, {0, 0});
  CHECK(r == std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  r = philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  CHECK(r == std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  r = philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  CHECK(r == std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("random tensors are reproducible and roughly distributed as asked") {
  Generator g1(42), g2(42);
  CHECK(randn({1000}, g1).to_vector<float>() == randn({1000}, g2).to_vector<float>());
  Generator g(7);
  Tensor n = randn({200000}, g, DType::f64);
  double m = mean(n).item();
  double v = mean(n * n).item() - m * m;
  CHECK(std::abs(m) < 0.01);
  CHECK(std::abs(v - 1.0) < 0.01);
  Tensor t = trunc_normal({100000}, 0.0, 0.02, -2.0, 2.0, g, DType::f64);
  double tm = mean(t).item();
  CHECK(std::abs(std::sqrt(mean(t * t).item() - tm * tm) - 0.02) < 0.0005);
  Tensor tt = trunc_normal({100000}, 0.0, 1.0, -0.5, 0.5, g, DType::f64);
  for (double x : tt.to_vector<double>()) REQUIRE(std::abs(x) <= 0.5);
  Tensor u = rand({100000}, g, DType::f64);
  CHECK(std::abs(mean(u).item() - 0.5) < 0.01);
}
