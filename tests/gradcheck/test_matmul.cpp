// Gradients of matmul and linear against f64 central finite differences, for every input and
// every shape case (1-D promotion, broadcast batch dims, transposed operands).
#include "engine/ops/matmul.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

namespace {
void check_matmul(const Shape& sa, const Shape& sb) {
  INFO("a ", shape_str(sa), " b ", shape_str(sb));
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
               (std::vector<Tensor>{grad_input(sa, 1), grad_input(sb, 2)}));
}
}  // namespace

TEST_CASE("gradcheck matmul: all shape cases") {
  check_matmul({5}, {5});
  check_matmul({4}, {4, 3});
  check_matmul({3, 4}, {4});
  check_matmul({4}, {2, 4, 3});
  check_matmul({2, 3, 4}, {4});
  check_matmul({3, 4}, {4, 5});
  check_matmul({2, 3, 4}, {4, 5});        // B shared by the batch: one stacked product
  check_matmul({3, 4}, {2, 4, 5});        // A shared by the batch
  check_matmul({2, 1, 3, 4}, {3, 4, 2});  // both broadcast
  check_matmul({1, 3}, {3, 1});
}

TEST_CASE("gradcheck matmul: transposed operands") {
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(-1, -2), in[1].t()); },
               (std::vector<Tensor>{grad_input({2, 4, 3}, 3), grad_input({5, 4}, 4)}));
}

TEST_CASE("gradcheck linear: x, weight and bias") {
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
               (std::vector<Tensor>{grad_input({2, 3, 4}, 5), grad_input({5, 4}, 6), grad_input({5}, 7)}));
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); },
               (std::vector<Tensor>{grad_input({4}, 8), grad_input({3, 4}, 9)}));
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0].t(), in[1]); },
               (std::vector<Tensor>{grad_input({4, 6}, 10), grad_input({3, 4}, 11)}));
}
