// check.cpp: tolerance comparison, reproducible test inputs and the finite-difference check.
#include "tests/support/check.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"

namespace rv::test {

std::string compare(const Tensor& actual, const Tensor& expected, Tol tol) {
  std::ostringstream os;
  if (!actual.defined() || !expected.defined()) return "compare: undefined tensor";
  if (actual.shape() != expected.shape()) {
    os << "shape mismatch: actual " << shape_str(actual.shape()) << " vs expected " << shape_str(expected.shape());
    return os.str();
  }
  std::vector<double> a = actual.to_double_vector(), e = expected.to_double_vector();
  double worst_ratio = 0;
  int64_t worst = -1, bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double budget = tol.atol + tol.rtol * std::fabs(e[i]);
    bool same_nonfinite = (std::isnan(a[i]) && std::isnan(e[i])) || (std::isinf(e[i]) && a[i] == e[i]);
    // equal values pass even with a zero budget (rtol = atol = 0 asks for exact equality)
    double ratio = same_nonfinite || a[i] == e[i] ? 0 : std::fabs(a[i] - e[i]) / budget;
    if (std::isnan(ratio)) ratio = INFINITY;
    if (ratio > 1) ++bad;
    if (ratio > worst_ratio || worst < 0) {
      worst_ratio = ratio;
      worst = int64_t(i);
    }
  }
  if (bad == 0) return "";
  os.precision(9);
  os << bad << " of " << a.size() << " elements out of tolerance (rtol " << tol.rtol << ", atol " << tol.atol
     << "); worst at flat index " << worst << ": actual " << a[worst] << ", expected " << e[worst] << ", "
     << worst_ratio * 100 << "% of budget";
  return os.str();
}

Tensor test_tensor(const Shape& shape, uint64_t seed, DType dtype, double lo, double hi) {
  Generator gen(seed, /*stream=*/0x7e57);
  return uniform(shape, lo, hi, gen, DType::f64).to(dtype);
}

Tensor test_noncontiguous(const Shape& shape, uint64_t seed, DType dtype) {
  Tensor dense = test_tensor(shape, seed, dtype);
  if (shape.size() < 2) {
    // every other element of a buffer twice as long
    Shape big = shape;
    if (big.empty()) return dense;
    big[0] *= 2;
    Tensor buf = zeros(big, dtype);
    Tensor view = buf.slice(0, 0, big[0], 2);
    autograd::NoGradGuard ng;
    view.copy_(dense);
    return view;
  }
  Shape tshape = shape;
  std::swap(tshape[tshape.size() - 1], tshape[tshape.size() - 2]);
  Tensor buf = zeros(tshape, dtype);
  Tensor view = buf.transpose(-1, -2);
  autograd::NoGradGuard ng;
  view.copy_(dense);
  return view;
}

Tensor grad_input(const Shape& shape, uint64_t seed, double lo, double hi) {
  Tensor t = test_tensor(shape, seed, DType::f64, lo, hi);
  t.requires_grad_(true);
  return t;
}

std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                      GradcheckOptions opt) {
  for (size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].defined() && inputs[k].requires_grad() && inputs[k].dtype() != DType::f64)
      return "gradcheck: input " + std::to_string(k) + " requires grad but is " + dtype_name(inputs[k].dtype()) +
             " (use float64)";
  // analytic
  for (auto& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
  Tensor y = f(inputs);
  Tensor w = test_tensor(y.shape(), opt.seed, DType::f64);
  Tensor loss = sum(mul(y.to(DType::f64), w));
  loss.backward();

  auto scalar_loss = [&](void) {
    autograd::NoGradGuard ng;
    return sum(mul(f(inputs).to(DType::f64), w)).item();
  };
  std::ostringstream os;
  os.precision(10);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    if (!g.defined()) {
      os << "input " << k << ": backward produced no gradient\n";
      continue;
    }
    std::vector<double> ga = g.to_double_vector();
    // perturb x in place through a detached alias (same storage)
    Tensor xd = x.detach();
    if (!xd.is_contiguous()) return "gradcheck: inputs must be contiguous";
    double* p = xd.data<double>();
    double worst = 0;
    int64_t worst_i = -1;
    double worst_a = 0, worst_n = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      double orig = p[i];
      p[i] = orig + opt.eps;
      double lp = scalar_loss();
      p[i] = orig - opt.eps;
      double lm = scalar_loss();
      p[i] = orig;
      double num = (lp - lm) / (2 * opt.eps);
      double err = std::fabs(num - ga[i]) / (opt.atol + opt.rtol * std::fabs(num));
      if (std::isnan(err)) err = INFINITY;
      if (err > worst || worst_i < 0) {
        worst = err;
        worst_i = i;
        worst_a = ga[i];
        worst_n = num;
      }
    }
    if (worst > 1)
      os << "input " << k << " " << shape_str(x.shape()) << ": worst element " << worst_i << " analytic " << worst_a
         << " vs numeric " << worst_n << " (" << worst * 100 << "% of budget)\n";
  }
  return os.str();
}

}  // namespace rv::test
