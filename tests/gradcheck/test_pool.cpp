// pooling: backward of max / avg / adaptive pooling against f64 central finite differences.
// Random inputs have no ties, so max pooling is differentiable at them.
#include "engine/ops/pool.h"
#include "tests/support/check.h"

using namespace rv;

namespace {
void check(const std::function<Tensor(const Tensor&)>& op, const Shape& shape, uint64_t seed) {
  std::vector<Tensor> inputs = {test::grad_input(shape, seed)};
  auto f = [&](const std::vector<Tensor>& in) { return op(in[0]); };
  RV_GRADCHECK(f, inputs);
}
}  // namespace

TEST_CASE("gradcheck max_pool2d") {
  check([](const Tensor& x) { return max_pool2d(x, {3}, {2}, {1}); }, {2, 2, 7, 6}, 1);
  check([](const Tensor& x) { return max_pool2d(x, {3, 2}, {2, 3}, {1, 1}, {2, 1}, true); }, {1, 2, 7, 9}, 2);
  check([](const Tensor& x) { return max_pool2d(x, {2}, {1}); }, {3, 4, 5}, 3);  // overlapping windows
}

TEST_CASE("gradcheck avg_pool2d") {
  check([](const Tensor& x) { return avg_pool2d(x, {3}, {2}, {1}, true, true); }, {2, 2, 6, 7}, 4);
  check([](const Tensor& x) { return avg_pool2d(x, {3}, {2}, {1}, true, false); }, {2, 2, 6, 7}, 5);
  check([](const Tensor& x) { return avg_pool2d(x, {2, 3}, {1, 2}, {1, 0}, false, true, 5); }, {3, 5, 7}, 6);
}

TEST_CASE("gradcheck adaptive pooling") {
  check([](const Tensor& x) { return adaptive_avg_pool2d(x, {3, 4}); }, {2, 2, 7, 9}, 7);
  check([](const Tensor& x) { return adaptive_avg_pool2d(x, {6, 5}); }, {2, 4, 3}, 8);
  check([](const Tensor& x) { return adaptive_max_pool2d(x, {3, 4}); }, {2, 2, 7, 9}, 9);
  check([](const Tensor& x) { return adaptive_max_pool2d(x, {5, 4}); }, {1, 2, 3, 3}, 10);
}
