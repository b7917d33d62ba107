// Gradients of the elementwise math ops against f64 central differences, for every
// differentiable input, including broadcast inputs. Inputs of ops with kinks (abs, clamp,
// maximum/minimum) are kept well away from them, where the derivative is defined.
#include <cmath>
#include <optional>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;
using Ins = std::vector<Tensor>;

namespace {

// A f64 leaf with values in [lo, hi), each pushed to at least `gap` away from every kink.
Tensor away_from(const Shape& shape, uint64_t seed, std::vector<double> kinks, double gap = 0.05, double lo = -1,
                 double hi = 1) {
  Tensor t = test::test_tensor(shape, seed, DType::f64, lo, hi);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (double k : kinks)
      if (std::fabs(p[i] - k) < gap) p[i] = p[i] >= k ? k + gap : k - gap;
  t.requires_grad_(true);
  return t;
}

}  // namespace

TEST_CASE("unary math functions") {
  RV_GRADCHECK([](const Ins& v) { return rv::exp(v[0]); }, (Ins{grad_input({3, 4}, 1, -2, 2)}));
  RV_GRADCHECK([](const Ins& v) { return rv::log(v[0]); }, (Ins{grad_input({3, 4}, 2, 0.2, 3)}));
  RV_GRADCHECK([](const Ins& v) { return rv::sqrt(v[0]); }, (Ins{grad_input({3, 4}, 3, 0.2, 3)}));
  RV_GRADCHECK([](const Ins& v) { return rv::rsqrt(v[0]); }, (Ins{grad_input({3, 4}, 4, 0.2, 3)}));
  RV_GRADCHECK([](const Ins& v) { return rv::tanh(v[0]); }, (Ins{grad_input({3, 4}, 5, -2, 2)}));
  RV_GRADCHECK([](const Ins& v) { return rv::abs(v[0]); }, (Ins{away_from({3, 4}, 6, {0.0})}));
}

TEST_CASE("pow with a scalar exponent") {
  for (double e : {2.0, 3.0, 0.5, -1.5, 1.0}) {
    CAPTURE(e);
    RV_GRADCHECK([e](const Ins& v) { return rv::pow(v[0], e); }, (Ins{grad_input({2, 5}, 7, 0.2, 2)}));
  }
  RV_GRADCHECK([](const Ins& v) { return rv::pow(v[0], 3.0); }, (Ins{grad_input({2, 5}, 8, -2, 2)}));
  RV_GRADCHECK([](const Ins& v) { return rv::pow(v[0], 0.0); }, (Ins{grad_input({4}, 9)}));
}

TEST_CASE("pow with a tensor exponent, both inputs, broadcasting") {
  RV_GRADCHECK([](const Ins& v) { return rv::pow(v[0], v[1]); },
               (Ins{grad_input({3, 4}, 10, 0.2, 2), grad_input({3, 4}, 11, -1.5, 1.5)}));
  RV_GRADCHECK([](const Ins& v) { return rv::pow(v[0], v[1]); },
               (Ins{grad_input({3, 1}, 12, 0.2, 2), grad_input({2, 1, 4}, 13, -1.5, 1.5)}));
}

TEST_CASE("clamp with both bounds and with one") {
  RV_GRADCHECK([](const Ins& v) { return clamp(v[0], -0.4, 0.3); }, (Ins{away_from({4, 5}, 14, {-0.4, 0.3})}));
  RV_GRADCHECK([](const Ins& v) { return clamp(v[0], std::nullopt, 0.1); }, (Ins{away_from({4, 5}, 15, {0.1})}));
  RV_GRADCHECK([](const Ins& v) { return clamp(v[0], -0.2, std::nullopt); }, (Ins{away_from({4, 5}, 16, {-0.2})}));
}

TEST_CASE("where, with cond, a and b broadcast") {
  Tensor cond = gt(test::test_tensor({3, 1, 4}, 17), 0.0);
  RV_GRADCHECK([cond](const Ins& v) { return where(cond, v[0], v[1]); },
               (Ins{grad_input({2, 4}, 18), grad_input({3, 2, 1}, 19)}));
  RV_GRADCHECK([cond](const Ins& v) { return where(cond, v[0], v[1]); },
               (Ins{grad_input({3, 2, 4}, 20), grad_input({1}, 21)}));
}

TEST_CASE("maximum and minimum away from ties, with broadcasting") {
  // b = a + an offset of at least 0.05 in either direction, so no pair is within 1e-3 of a tie
  Tensor a = grad_input({3, 4}, 22);
  Tensor off = away_from({3, 4}, 23, {0.0}).detach();
  Tensor b = (a.detach() + off).detach().requires_grad_();
  RV_GRADCHECK([](const Ins& v) { return maximum(v[0], v[1]); }, (Ins{a, b}));
  RV_GRADCHECK([](const Ins& v) { return minimum(v[0], v[1]); }, (Ins{a, b}));
  // broadcast: (3, 4) against (4) values kept apart by construction
  Tensor c = grad_input({4}, 24, -0.3, 0.3);
  Tensor d = grad_input({3, 4}, 25);
  {  // push each d[i][j] at least 0.02 away from c[j], the value it is compared with
    std::vector<double> cv = c.to_vector<double>();
    double* p = d.data<double>();
    for (int i = 0; i < 12; ++i) {
      double k = cv[i % 4];
      if (std::fabs(p[i] - k) < 0.02) p[i] = k + 0.02;
    }
  }
  RV_GRADCHECK([](const Ins& v) { return maximum(v[0], v[1]); }, (Ins{d, c}));
  RV_GRADCHECK([](const Ins& v) { return minimum(v[0], v[1]); }, (Ins{c, d}));
}
