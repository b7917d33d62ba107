// Gradients of max / min (over all elements and along a dim) and var against f64 central
// differences. Inputs for max/min have distinct values at least 1e-2 apart, so that the
// winner does not change under the finite-difference step.
#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;
using Ins = std::vector<Tensor>;

namespace {

// A f64 leaf holding a shuffled permutation of -1 + 0.02 k: no ties, no near-ties.
Tensor distinct_input(const Shape& shape, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  std::vector<double> key = test::test_tensor({n}, seed, DType::f64).to_vector<double>();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  std::vector<double> v(n);
  for (int64_t k = 0; k < n; ++k) v[order[k]] = -1.0 + 0.02 * double(k);
  return from_vector(v, shape, DType::f64).requires_grad_();
}

}  // namespace

TEST_CASE("max and min over all elements") {
  RV_GRADCHECK([](const Ins& v) { return max(v[0]); }, (Ins{distinct_input({3, 5}, 1)}));
  RV_GRADCHECK([](const Ins& v) { return min(v[0]); }, (Ins{distinct_input({3, 5}, 2)}));
}

TEST_CASE("max and min along each dim, keepdim or not, strided") {
  for (int64_t dim = -3; dim < 3; ++dim) {
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      RV_GRADCHECK([=](const Ins& v) { return max(v[0], dim, keepdim).values; },
                   (Ins{distinct_input({2, 3, 4}, 3)}));
      RV_GRADCHECK([=](const Ins& v) { return min(v[0].transpose(0, 2), dim, keepdim).values; },
                   (Ins{distinct_input({2, 3, 4}, 4)}));
    }
  }
}

TEST_CASE("var over dim sets and corrections") {
  const Shape dim_sets[] = {{}, {0}, {1}, {-1}, {0, 2}, {0, 1}};
  for (const Shape& dims : dim_sets) {
    for (double corr : {1.0, 0.0}) {
      CAPTURE(shape_str(dims));
      CAPTURE(corr);
      RV_GRADCHECK([&](const Ins& v) { return var(v[0], dims, corr, false); },
                   (Ins{test::grad_input({3, 4, 5}, 5)}));
      RV_GRADCHECK([&](const Ins& v) { return var(v[0].transpose(1, 2), dims, corr, true); },
                   (Ins{test::grad_input({2, 3, 4}, 6)}));
    }
  }
}
