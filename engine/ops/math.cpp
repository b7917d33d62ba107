// math.cpp: exp, log, sqrt, rsqrt, abs, tanh, pow, clamp, where, maximum/minimum (forward and
// backward), and the comparisons / logical_not (forward only: bool results have no gradient).
//
// Unary functions save whichever tensor makes the derivative cheapest: exp, sqrt, rsqrt and
// tanh save their output (d exp = exp, d tanh = 1 - tanh^2, ...), the others their input. Each
// backward is one fused map over (grad, saved), not a chain of ops. On a device, the forward
// and that map are the backend's unary / unary_backward kernels (same formulas).
#include "engine/ops/math.h"

#include <cmath>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/ops/reduce.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;
using UnaryOp = backend::DeviceBackend::UnaryOp;

namespace {

// Records a one-input op whose gradient is deriv(g, s) elementwise, s being the saved input
// (save_output false) or output (true).
// On a device the same map is the backend's fused unary_backward kernel for `op`.
template <class D>
void record_unary(const char* name, UnaryOp op, const Tensor& x, Tensor& out, bool save_output, D deriv) {
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor s = rec.save(save_output ? out : x);
    rec.finish(out, [s, deriv, name, op](const Tensor& g, const Needs&) -> Grads {
      if (!s.device().is_cpu()) return {backend::get(s.device()).unary_backward(op, g, s)};
      return {cpu::map_binary(g, s, name, deriv)};
    });
  }
}

// The forward values: the host map, or the device backend's unary kernel.
template <class F>
Tensor unary_values(const Tensor& x, const char* name, UnaryOp op, F f, double a = 0.0, double b = 0.0) {
  if (!x.device().is_cpu()) return backend::get(x.device()).unary(op, x, a, b);
  return cpu::map_unary(x, name, f);
}

}  // namespace

// ---- unary functions ------------------------------------------------------------------------

Tensor exp(const Tensor& x) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return exp(x_ac);
  }
  Tensor out = unary_values(x, "exp", UnaryOp::exp, [](auto v) { return std::exp(v); });
  record_unary("exp", UnaryOp::exp, x, out, true, [](auto g, auto y) { return g * y; });
  return out;
}

Tensor log(const Tensor& x) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return log(x_ac);
  }
  Tensor out = unary_values(x, "log", UnaryOp::log, [](auto v) { return std::log(v); });
  record_unary("log", UnaryOp::log, x, out, false, [](auto g, auto v) { return g / v; });
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_values(x, "sqrt", UnaryOp::sqrt, [](auto v) { return std::sqrt(v); });
  // d sqrt(x) = 1 / (2 sqrt(x)): inf at 0, as in PyTorch
  record_unary("sqrt", UnaryOp::sqrt, x, out, true, [](auto g, auto y) { return g / (y + y); });
  return out;
}

Tensor rsqrt(const Tensor& x) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return rsqrt(x_ac);
  }
  Tensor out = unary_values(x, "rsqrt", UnaryOp::rsqrt, [](auto v) { return decltype(v)(1) / std::sqrt(v); });
  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  record_unary("rsqrt", UnaryOp::rsqrt, x, out, true, [](auto g, auto y) { return decltype(y)(-0.5) * g * y * y * y; });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_values(x, "abs", UnaryOp::abs, [](auto v) { return std::abs(v); });
  record_unary("abs", UnaryOp::abs, x, out, false, [](auto g, auto v) {
    using T = decltype(v);
    return v > T(0) ? g : (v < T(0) ? -g : T(0));  // sign(x) * g; 0 at the kink
  });
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_values(x, "tanh", UnaryOp::tanh, [](auto v) { return std::tanh(v); });
  record_unary("tanh", UnaryOp::tanh, x, out, true, [](auto g, auto y) { return g * (decltype(y)(1) - y * y); });
  return out;
}

Tensor pow(const Tensor& x, double e) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return pow(x_ac, e);
  }
  Tensor out = !x.device().is_cpu() ? backend::get(x.device()).unary(UnaryOp::pow_scalar, x, e)
               : e == 2.0 ? cpu::map_unary(x, "pow", [](auto v) { return v * v; })
                          : cpu::map_unary(x, "pow", [e](auto v) { return std::pow(v, decltype(v)(e)); });
  if (auto rec = autograd::Recorder("pow", {x})) {
    Tensor sx = rec.save(x);
    rec.finish(out, [sx, e](const Tensor& g, const Needs&) -> Grads {
      if (!sx.device().is_cpu()) return {backend::get(sx.device()).unary_backward(UnaryOp::pow_scalar, g, sx, e)};
      if (e == 0.0) return {zeros(sx.shape(), g.dtype())};  // PyTorch: exactly 0, even at x = 0
      if (e == 2.0) return {cpu::map_binary(g, sx, "pow", [](auto gv, auto v) { return gv * (v + v); })};
      return {cpu::map_binary(g, sx, "pow", [e](auto gv, auto v) {
        using T = decltype(v);
        return gv * T(e) * std::pow(v, T(e - 1.0));
      })};
    });
  }
  return out;
}

Tensor pow(const Tensor& x, const Tensor& e) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x), e_ac = autocast::cast_f32(e);
    autocast::DisabledGuard inside;
    return pow(x_ac, e_ac);
  }
  Tensor out = cpu::map_binary(x, e, "pow", [](auto v, auto p) { return std::pow(v, p); });
  if (auto rec = autograd::Recorder("pow", {x, e})) {
    Tensor sx = rec.save(x), se = rec.save(e);
    rec.finish(out, [sx, se](const Tensor& g, const Needs& n) -> Grads {
      Tensor gx, ge;
      if (n[0]) {
        // e * x^(e-1), and exactly 0 where e == 0 (PyTorch's mask, so 0^0 has no NaN/inf grad)
        gx = sum_to_shape(cpu::map_ternary(g, sx, se, "pow", [](auto gv, auto v, auto p) {
          using T = decltype(v);
          return p == T(0) ? T(0) : gv * p * std::pow(v, p - T(1));
        }), sx.shape());
      }
      if (n[1]) {
        // x^e * log(x), and 0 where x == 0 and e >= 0 (the limit PyTorch uses)
        ge = sum_to_shape(cpu::map_ternary(g, sx, se, "pow", [](auto gv, auto v, auto p) {
          using T = decltype(v);
          return (v == T(0) && p >= T(0)) ? T(0) : gv * std::pow(v, p) * std::log(v);
        }), se.shape());
      }
      return {gx, ge};
    });
  }
  return out;
}

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  if (!lo && !hi) throw std::invalid_argument("clamp: at least one of min and max must be given");
  const double l = lo ? *lo : -INFINITY, h = hi ? *hi : INFINITY;
  // NaN compares false both ways, so it passes through unchanged. lo > hi gives hi (as PyTorch).
  Tensor out = unary_values(x, "clamp", UnaryOp::clamp, [l, h](auto v) {
    using T = decltype(v);
    T r = v < T(l) ? T(l) : v;
    return r > T(h) ? T(h) : r;
  }, l, h);
  if (auto rec = autograd::Recorder("clamp", {x})) {
    Tensor sx = rec.save(x);
    rec.finish(out, [sx, l, h](const Tensor& g, const Needs&) -> Grads {
      if (!sx.device().is_cpu()) return {backend::get(sx.device()).unary_backward(UnaryOp::clamp, g, sx, l, h)};
      return {cpu::map_binary(g, sx, "clamp", [l, h](auto gv, auto v) {
        using T = decltype(v);
        return (v >= T(l) && v <= T(h)) ? gv : T(0);
      })};
    });
  }
  return out;
}

// ---- where, maximum, minimum ---------------------------------------------------------------

namespace {

// cond ? a : b on the host, or the backend's select when any input is on a device (all three on
// that one device; a and b promoted as the CPU promotes them).
Tensor where_values(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (cond.device().is_cpu() && a.device().is_cpu() && b.device().is_cpu()) return cpu::map_where(cond, a, b, "where");
  if (cond.device() != a.device() || cond.device() != b.device())
    throw std::invalid_argument("where: cond on " + cond.device().str() + ", a on " + a.device().str() + ", b on " +
                                b.device().str() + "; all three must be on one device");
  if (cond.dtype() != DType::boolean)
    throw std::invalid_argument(std::string("where: expected cond to be a bool tensor, got ") +
                                dtype_name(cond.dtype()));
  const DType dt = promote_types(a.dtype(), b.dtype());
  const Tensor ad = a.dtype() == dt ? a.detach() : a.detach().to(dt);
  const Tensor bd = b.dtype() == dt ? b.detach() : b.detach().to(dt);
  return backend::get(cond.device()).where(cond.detach(), ad, bd);
}

// A 0-d zero of g's dtype where g lives (the other side of the gradient's select).
Tensor zero_like_scalar(const Tensor& g) {
  return g.device().is_cpu() ? scalar_tensor(0.0, g.dtype()) : zeros({}, g.dtype(), g.device());
}

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = where_values(cond, a, b);
  if (auto rec = autograd::Recorder("where", {a, b})) {
    Tensor sc = rec.save(cond);
    Shape sa = a.shape(), sb = b.shape();
    rec.finish(out, [sc, sa, sb](const Tensor& g, const Needs& n) -> Grads {
      Tensor zero = zero_like_scalar(g);
      return {n[0] ? sum_to_shape(where_values(sc, g, zero), sa) : Tensor(),
              n[1] ? sum_to_shape(where_values(sc, zero, g), sb) : Tensor()};
    });
  }
  return out;
}

namespace {

// Shared by maximum and minimum. `a_wins(p, q)` says p is strictly preferred over q.
// Gradient (PyTorch's rule): all of g to the strict winner, g/2 to each on a tie, and where
// either side is NaN (no order) g goes to both.
template <class Wins>
Tensor extremum(const Tensor& a, const Tensor& b, const char* name, Wins wins) {
  Tensor out = cpu::map_binary(a, b, name, [wins](auto p, auto q) {
    return (wins(p, q) || p != p) ? p : q;  // p != p: p is NaN, keep it; a NaN q falls through
  });
  if (auto rec = autograd::Recorder(name, {a, b})) {
    Tensor sa = rec.save(a), sb = rec.save(b);
    rec.finish(out, [sa, sb, name, wins](const Tensor& g, const Needs& n) -> Grads {
      auto share = [wins](auto gv, auto p, auto q) {
        using T = decltype(gv);
        if (wins(q, p)) return T(0);
        return p == q ? gv * T(0.5) : gv;
      };
      return {n[0] ? sum_to_shape(cpu::map_ternary(g, sa, sb, name, share), sa.shape()) : Tensor(),
              n[1] ? sum_to_shape(cpu::map_ternary(g, sb, sa, name, share), sb.shape()) : Tensor()};
    });
  }
  return out;
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum(a, b, "maximum", [](auto p, auto q) { return p > q; });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum(a, b, "minimum", [](auto p, auto q) { return p < q; });
}

// ---- comparisons ----------------------------------------------------------------------------

namespace {

// The scalar as a 0-d tensor that compares with `t` the way PyTorch does: rounded to a float
// tensor's dtype; exact (i64) for an integer tensor when the scalar is a whole number, else f64.
Tensor compare_scalar(const Tensor& t, double s) {
  if (is_floating(t.dtype())) return scalar_tensor(s, t.dtype());
  if (s == std::floor(s) && std::abs(s) < 9.2e18) return scalar_tensor(s, DType::i64);
  return scalar_tensor(s, DType::f64);
}

// On a device: both sides converted to the CPU's compare dtype there, then the backend's kernel.
Tensor compare_on_device(backend::DeviceBackend::CompareOp op, const Tensor& a, const Tensor& b) {
  const char* name = backend::DeviceBackend::compare_op_name(op);
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(name) + ": a on " + a.device().str() + ", b on " + b.device().str() +
                                "; move one with .to(device) first");
  const DType ct = cpu::compare_dtype(a.dtype(), b.dtype());
  const Tensor ac = a.dtype() == ct ? a.detach() : a.detach().to(ct);
  const Tensor bc = b.dtype() == ct ? b.detach() : b.detach().to(ct);
  return backend::get(a.device()).compare(op, ac, bc);
}

// compare_scalar's 0-d tensor made on a's device (filled there: no host-to-device copy).
Tensor compare_scalar_on_device(const Tensor& a, double s) {
  const DType dt = compare_scalar(a, s).dtype();
  Tensor t = empty({}, dt, a.device());
  t.fill_(s);  // rounded to dt on the host exactly as scalar_tensor(s, dt)
  return t;
}

}  // namespace

#define RV_COMPARISON(name, expr)                                                                    \
  Tensor name(const Tensor& a, const Tensor& b) {                                                    \
    if (!a.device().is_cpu() || !b.device().is_cpu())                                                \
      return compare_on_device(backend::DeviceBackend::CompareOp::name, a, b);                       \
    return cpu::map_compare(a, b, #name, [](auto p, auto q) { return expr; });                       \
  }                                                                                                  \
  Tensor name(const Tensor& a, double b) {                                                           \
    if (!a.device().is_cpu())                                                                        \
      return compare_on_device(backend::DeviceBackend::CompareOp::name, a, compare_scalar_on_device(a, b)); \
    return cpu::map_compare(a, compare_scalar(a, b), #name, [](auto p, auto q) { return expr; });    \
  }

RV_COMPARISON(eq, p == q)
RV_COMPARISON(ne, p != q)
RV_COMPARISON(lt, p < q)
RV_COMPARISON(le, p <= q)
RV_COMPARISON(gt, p > q)
RV_COMPARISON(ge, p >= q)
#undef RV_COMPARISON

Tensor logical_not(const Tensor& x) {
  if (!x.device().is_cpu())
    return compare_on_device(backend::DeviceBackend::CompareOp::eq, x, zeros({}, x.dtype(), x.device()));
  return cpu::map_compare(x, scalar_tensor(0.0, x.dtype()), "logical_not", [](auto p, auto q) { return p == q; });
}

}  // namespace rv
