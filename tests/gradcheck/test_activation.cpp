// Gradients of the activations against f64 central differences. relu's input is kept away
// from its kink at 0.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;
using Ins = std::vector<Tensor>;

TEST_CASE("gelu (both forms), silu, sigmoid over a wide range") {
  RV_GRADCHECK([](const Ins& v) { return gelu(v[0]); }, (Ins{grad_input({4, 6}, 1, -4, 4)}));
  RV_GRADCHECK([](const Ins& v) { return gelu(v[0], "tanh"); }, (Ins{grad_input({4, 6}, 2, -4, 4)}));
  RV_GRADCHECK([](const Ins& v) { return silu(v[0]); }, (Ins{grad_input({4, 6}, 3, -6, 6)}));
  RV_GRADCHECK([](const Ins& v) { return sigmoid(v[0]); }, (Ins{grad_input({4, 6}, 4, -6, 6)}));
}

TEST_CASE("relu away from 0") {
  Tensor x = test::test_tensor({5, 5}, 5, DType::f64);
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (std::fabs(p[i]) < 0.05) p[i] = p[i] >= 0 ? 0.05 : -0.05;
  x.requires_grad_(true);
  RV_GRADCHECK([](const Ins& v) { return relu(v[0]); }, (Ins{x}));
}

TEST_CASE("an activation of a non-contiguous view") {
  RV_GRADCHECK([](const Ins& v) { return gelu(v[0].t(), "tanh"); }, (Ins{grad_input({3, 5}, 6, -3, 3)}));
}
