// dropout / drop_path: gradients against f64 finite differences. Each evaluation builds a fresh
// Generator with the same seed, so every evaluation sees the same mask.
#include "engine/ops/dropout.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

TEST_CASE("gradcheck dropout") {
  std::vector<Tensor> in = {grad_input({6, 7}, 1)};
  RV_GRADCHECK([](const std::vector<Tensor>& v) {
    Generator gen(17);
    return dropout(v[0], 0.4, true, gen);
  }, in);
}

TEST_CASE("gradcheck drop_path") {
  std::vector<Tensor> in = {grad_input({8, 3, 2}, 2)};
  RV_GRADCHECK([](const std::vector<Tensor>& v) {
    Generator gen(18);
    return drop_path(v[0], 0.5, true, gen);
  }, in);
}
