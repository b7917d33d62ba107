// Gradients of batch_norm (training and eval mode) and group_norm w.r.t. x, weight and bias
// against f64 central finite differences.
#include <vector>

#include "engine/ops/norm.h"
#include "tests/support/check.h"

using namespace rv;

namespace {
using Inputs = std::vector<Tensor>;
}  // namespace

TEST_CASE("gradcheck batch_norm in training mode: x, weight, bias") {
  for (const Shape& xs : {Shape{6, 3}, Shape{2, 3, 2, 3}, Shape{3, 2, 4}}) {
    CAPTURE(shape_str(xs));
    const int64_t C = xs[1];
    Tensor x = test::grad_input(xs, 1, -2.0, 2.0);
    Tensor w = test::grad_input({C}, 2), b = test::grad_input({C}, 3);
    Tensor rm = zeros({C}, DType::f64), rv = ones({C}, DType::f64);  // updated on every call; y ignores them
    RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5); },
                 (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], {}, {}, {}, {}, true, 0.1, 1e-3); },
                 Inputs{x});
  }
}

TEST_CASE("gradcheck batch_norm in eval mode: x, weight, bias") {
  Tensor x = test::grad_input({3, 4, 5}, 10, -2.0, 2.0);
  Tensor w = test::grad_input({4}, 11), b = test::grad_input({4}, 12);
  Tensor rm = test::test_tensor({4}, 13, DType::f64), rv = test::test_tensor({4}, 14, DType::f64, 0.5, 2.0);
  RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
               (Inputs{x, w, b}));
  RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, {}, in[1], false); }, (Inputs{x, b}));
}

TEST_CASE("gradcheck group_norm: x, weight, bias") {
  struct Case { Shape shape; int64_t groups; };
  for (const Case& k : {Case{{2, 6, 3}, 3}, Case{{2, 4, 2, 2}, 1}, Case{{3, 4, 2}, 4}, Case{{2, 6}, 2}}) {
    CAPTURE(shape_str(k.shape));
    const int64_t C = k.shape[1];
    Tensor x = test::grad_input(k.shape, 20, -1.0, 2.0);
    Tensor w = test::grad_input({C}, 21), b = test::grad_input({C}, 22);
    RV_GRADCHECK([&](const Inputs& in) { return group_norm(in[0], k.groups, in[1], in[2]); }, (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) { return group_norm(in[0], k.groups, {}, {}, 1e-3); }, Inputs{x});
  }
}
