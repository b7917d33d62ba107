// Gradients of softmax and log_softmax along every dim, dense and strided, against f64
// central differences.
#include "engine/autograd.h"
#include "engine/ops/softmax.h"
#include "tests/support/check.h"

using namespace rv;
using Ins = std::vector<Tensor>;

TEST_CASE("softmax and log_softmax along each dim") {
  for (int64_t dim = -3; dim < 3; ++dim) {
    CAPTURE(dim);
    RV_GRADCHECK([=](const Ins& v) { return softmax(v[0], dim); }, (Ins{test::grad_input({2, 3, 4}, 1, -3, 3)}));
    RV_GRADCHECK([=](const Ins& v) { return log_softmax(v[0], dim); }, (Ins{test::grad_input({2, 3, 4}, 2, -3, 3)}));
    RV_GRADCHECK([=](const Ins& v) { return softmax(v[0].transpose(0, 2), dim); },
                 (Ins{test::grad_input({4, 3, 2}, 3, -3, 3)}));
    RV_GRADCHECK([=](const Ins& v) { return log_softmax(v[0].transpose(1, 2), dim); },
                 (Ins{test::grad_input({2, 4, 3}, 4, -3, 3)}));
  }
}

TEST_CASE("softmax of a 0-d tensor and of a length-1 dim") {
  RV_GRADCHECK([](const Ins& v) { return softmax(v[0], 0); }, (Ins{test::grad_input({}, 5)}));
  RV_GRADCHECK([](const Ins& v) { return log_softmax(v[0], 1); }, (Ins{test::grad_input({3, 1}, 6)}));
}
