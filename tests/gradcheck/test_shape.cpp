// Gradients of the shape ops against f64 central finite differences.
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "tests/support/check.h"

using namespace rv;
using V = std::vector<Tensor>;

TEST_CASE("cat of three tensors, and with a skipped 1-D empty tensor") {
  RV_GRADCHECK([](const V& in) { return cat(in, 1); },
               (V{test::grad_input({2, 2, 3}, 1), test::grad_input({2, 1, 3}, 2), test::grad_input({2, 3, 3}, 3)}));
  RV_GRADCHECK([](const V& in) { return cat(in, -1); },
               (V{test::grad_input({3}, 4), test::grad_input({0}, 5), test::grad_input({2}, 6)}));
}

TEST_CASE("stack") {
  RV_GRADCHECK([](const V& in) { return stack(in, 1); },
               (V{test::grad_input({2, 3}, 7), test::grad_input({2, 3}, 8), test::grad_input({2, 3}, 9)}));
}

TEST_CASE("split and chunk pieces, reordered and scaled") {
  RV_GRADCHECK([](const V& in) {
    auto p = split(in[0], 2, 1);  // sizes 2, 2, 1
    return cat({p[2], p[0] * 2.0, p[1] * -3.0}, 1);
  }, V{test::grad_input({3, 5}, 10)});
  RV_GRADCHECK([](const V& in) {
    auto p = split(in[0], Shape{1, 3}, 0);
    return p[1] * p[1];  // p[0] unused: its part of the gradient is zero
  }, V{test::grad_input({4, 2}, 11)});
  RV_GRADCHECK([](const V& in) {
    auto p = chunk(in[0], 2, -1);
    return p[0] * p[1];
  }, V{test::grad_input({3, 6}, 12)});
}

TEST_CASE("roll with two dims, and without dims") {
  RV_GRADCHECK([](const V& in) { return roll(in[0], {-1, 2}, {1, 2}); }, V{test::grad_input({2, 3, 4, 2}, 13)});
  RV_GRADCHECK([](const V& in) { return roll(in[0], {5}, {}); }, V{test::grad_input({3, 3}, 14)});
}

TEST_CASE("flip") {
  RV_GRADCHECK([](const V& in) { return flip(in[0], {0, -1}); }, V{test::grad_input({3, 2, 4}, 15)});
}

TEST_CASE("repeat") {
  RV_GRADCHECK([](const V& in) { return repeat(in[0], {2, 1, 3}); }, V{test::grad_input({2, 3}, 16)});
}

TEST_CASE("window_partition and window_reverse") {
  RV_GRADCHECK([](const V& in) { return window_partition(in[0], 2); }, V{test::grad_input({2, 4, 6, 3}, 17)});
  RV_GRADCHECK([](const V& in) { return window_reverse(in[0], 2, 4, 6); }, V{test::grad_input({12, 4, 3}, 18)});
  // the shifted-window round trip of a Swin block
  RV_GRADCHECK([](const V& in) {
    Tensor w = window_partition(roll(in[0], {-1, -1}, {1, 2}), 2) * 1.5;
    return roll(window_reverse(w, 2, 4, 4), {1, 1}, {1, 2});
  }, V{test::grad_input({1, 4, 4, 2}, 19)});
}
