// init.cpp: the in-place initialisers of init.h. Each draws a fresh tensor from the Philox
// factories in engine/rng.h and copies it into the target under NoGradGuard.
#include "engine/nn/init.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"

namespace rv::nn::init {

namespace {

thread_local bool skip_init = false;

void check_float(const Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(std::string("init::") + op + ": the tensor is undefined");
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string("init::") + op + ": expected a float tensor, got " +
                                dtype_name(t.dtype()));
}

// The dtype the random values are drawn in: f64 keeps f64's precision, everything else is
// drawn in f32 and rounded by copy_.
DType draw_dtype(const Tensor& t) { return t.dtype() == DType::f64 ? DType::f64 : DType::f32; }

// Writes `values` into t in place; t may require grad (it is a parameter), hence no-grad.
Tensor& assign(Tensor& t, const Tensor& values) {
  if (skip_init) return t;
  autograd::NoGradGuard no_grad;
  t.copy_(values);
  return t;
}

}  // namespace

SkipInitGuard::SkipInitGuard() : previous_(skip_init) { skip_init = true; }
SkipInitGuard::~SkipInitGuard() { skip_init = previous_; }
bool init_skipped() { return skip_init; }

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape) {
  if (shape.size() < 2)
    throw std::invalid_argument("init::fan_in_and_fan_out: fan in and fan out need a tensor with at least 2 dims, got " +
                                shape_str(shape));
  int64_t receptive = 1;  // kernel positions, e.g. KH * KW for a conv weight (O, C, KH, KW)
  for (size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

Tensor& constant_(Tensor& t, double value) {
  check_float(t, "constant_");
  if (skip_init) return t;
  autograd::NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& uniform_(Tensor& t, Generator& gen, double lo, double hi) {
  check_float(t, "uniform_");
  if (!(lo <= hi))
    throw std::invalid_argument("init::uniform_: expected lo <= hi, got [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + ")");
  if (skip_init) return t;
  return assign(t, uniform(t.shape(), lo, hi, gen, draw_dtype(t)));
}

Tensor& normal_(Tensor& t, Generator& gen, double mean, double std) {
  check_float(t, "normal_");
  if (!(std >= 0)) throw std::invalid_argument("init::normal_: expected std >= 0, got " + std::to_string(std));
  if (skip_init) return t;
  Tensor z = randn(t.shape(), gen, draw_dtype(t));
  if (std != 1.0 || mean != 0.0) {
    autograd::NoGradGuard no_grad;
    z = z.to(DType::f64);  // scale in double, then let copy_ round once
    double* p = z.data<double>();
    for (int64_t i = 0, n = z.numel(); i < n; ++i) p[i] = mean + std * p[i];
  }
  return assign(t, z);
}

Tensor& trunc_normal_(Tensor& t, Generator& gen, double std, double mean, double a, double b) {
  check_float(t, "trunc_normal_");
  if (!(std > 0)) throw std::invalid_argument("init::trunc_normal_: expected std > 0, got " + std::to_string(std));
  if (!(a < b))
    throw std::invalid_argument("init::trunc_normal_: expected a < b, got [" + std::to_string(a) + ", " +
                                std::to_string(b) + "]");
  if (skip_init) return t;
  return assign(t, trunc_normal(t.shape(), mean, std, a, b, gen, draw_dtype(t)));
}

Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a) {
  check_float(t, "kaiming_uniform_");
  const int64_t fan_in = fan_in_and_fan_out(t.shape()).first;
  if (fan_in == 0) return t;  // nothing to draw for (as PyTorch, which only warns)
  const double gain = std::sqrt(2.0 / (1.0 + a * a));  // leaky_relu's gain
  const double bound = gain * std::sqrt(3.0 / double(fan_in));
  return uniform_(t, gen, -bound, bound);
}

Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain) {
  check_float(t, "xavier_uniform_");
  auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  if (fan_in + fan_out == 0) return t;
  const double bound = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  return uniform_(t, gen, -bound, bound);
}

}  // namespace rv::nn::init
