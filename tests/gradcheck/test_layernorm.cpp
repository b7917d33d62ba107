// Gradients of layer_norm in x, weight and bias against f64 central differences: one and two
// normalised dims, strided x, without weight / bias.
#include "engine/autograd.h"
#include "engine/ops/layernorm.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;
using Ins = std::vector<Tensor>;

TEST_CASE("layer_norm over the last dim: x, weight, bias") {
  RV_GRADCHECK([](const Ins& v) { return layer_norm(v[0], {5}, v[1], v[2]); },
               (Ins{grad_input({2, 3, 5}, 1, -2, 2), grad_input({5}, 2, 0.5, 1.5), grad_input({5}, 3)}));
}

TEST_CASE("layer_norm over two dims, strided x") {
  RV_GRADCHECK([](const Ins& v) { return layer_norm(v[0].transpose(1, 2), {4, 3}, v[1], v[2]); },
               (Ins{grad_input({2, 3, 4}, 4, -2, 2), grad_input({4, 3}, 5, 0.5, 1.5), grad_input({4, 3}, 6)}));
}

TEST_CASE("layer_norm without weight or bias, and with only one of them") {
  RV_GRADCHECK([](const Ins& v) { return layer_norm(v[0], {6}); }, (Ins{grad_input({3, 6}, 7, -2, 2)}));
  RV_GRADCHECK([](const Ins& v) { return layer_norm(v[0], {6}, v[1], Tensor()); },
               (Ins{grad_input({3, 6}, 8, -2, 2), grad_input({6}, 9)}));
  RV_GRADCHECK([](const Ins& v) { return layer_norm(v[0], {6}, Tensor(), v[1]); },
               (Ins{grad_input({3, 6}, 10, -2, 2), grad_input({6}, 11)}));
}

TEST_CASE("layer_norm gradient of weight and bias only (x is a constant)") {
  Tensor x = test::test_tensor({4, 5}, 12, DType::f64);
  RV_GRADCHECK([x](const Ins& v) { return layer_norm(x, {5}, v[0], v[1]); },
               (Ins{grad_input({5}, 13), grad_input({5}, 14)}));
}
