// elementwise.cpp: add, sub, mul, div (tensor-tensor with broadcasting, and tensor-scalar),
// neg, and the in-place updates used by optimizers.
// On a device, the tensor-scalar ops and neg call the backend's unary kernel (DeviceBackend::unary).
//
// Each op computes its values with cpu::map_binary / map_unary (or, for tensors on a device, the
// device backend's binary kernel), then records a backward closure. Broadcast inputs get their
// gradient summed back to their own shape.
#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/ops/reduce.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

// The values of a tensor-tensor op whose inputs live on a device: both on the same device; two
// float dtypes are promoted as on the CPU (through the backend's dtype conversion).
Tensor device_binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = backend::binary_op_name(op);
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(name) + ": operands on different devices (" + a.device().str() + " and " +
                                b.device().str() + "); move one with .to(device)");
  if (a.dtype() != b.dtype()) {
    // Type promotion as on the CPU (and as torch): the narrower operand is widened first, so a bf16
    // activation from an autocast matmul meets an f32 residual in f32. Values only: the op records
    // itself on the original inputs and autograd converts each gradient to its input's dtype.
    const DType dt = promote_types(a.dtype(), b.dtype());
    if (!is_floating(a.dtype()) || !is_floating(b.dtype()))
      throw std::runtime_error(std::string(name) + ": mixed dtypes (" + dtype_name(a.dtype()) + " and " +
                               dtype_name(b.dtype()) + ") need float operands on " + a.device().str());
    autograd::NoGradGuard ng;
    return backend::get(a.device()).binary(op, a.detach().to(dt), b.detach().to(dt));
  }
  return backend::get(a.device()).binary(op, a, b);
}

bool on_host(const Tensor& a, const Tensor& b) { return a.device().is_cpu() && b.device().is_cpu(); }

// The values of a unary / tensor-scalar op whose input lives on a device.
Tensor device_unary(backend::DeviceBackend::UnaryOp op, const Tensor& x, double s = 0.0) {
  return backend::get(x.device()).unary(op, x, s, 0.0);
}
using UnaryOp = backend::DeviceBackend::UnaryOp;

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = on_host(a, b) ? cpu::map_binary(a, b, "add", [](auto p, auto q) { return p + q; })
                             : device_binary(backend::BinaryOp::add, a, b);
  if (auto rec = autograd::Recorder("add", {a, b})) {
    Shape sa = a.shape(), sb = b.shape();
    rec.finish(out, [sa, sb](const Tensor& g, const Needs& n) -> Grads {
      return {n[0] ? sum_to_shape(g, sa) : Tensor(), n[1] ? sum_to_shape(g, sb) : Tensor()};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = on_host(a, b) ? cpu::map_binary(a, b, "sub", [](auto p, auto q) { return p - q; })
                             : device_binary(backend::BinaryOp::sub, a, b);
  if (auto rec = autograd::Recorder("sub", {a, b})) {
    Shape sa = a.shape(), sb = b.shape();
    rec.finish(out, [sa, sb](const Tensor& g, const Needs& n) -> Grads {
      return {n[0] ? sum_to_shape(g, sa) : Tensor(), n[1] ? sum_to_shape(neg(g), sb) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = on_host(a, b) ? cpu::map_binary(a, b, "mul", [](auto p, auto q) { return p * q; })
                             : device_binary(backend::BinaryOp::mul, a, b);
  if (auto rec = autograd::Recorder("mul", {a, b})) {
    Shape sha = a.shape(), shb = b.shape();
    Tensor sa = rec.needs(1) ? rec.save(a) : Tensor();  // save only what a needed gradient uses
    Tensor sb = rec.needs(0) ? rec.save(b) : Tensor();
    rec.finish(out, [sha, shb, sa, sb](const Tensor& g, const Needs& n) -> Grads {
      return {n[0] ? sum_to_shape(mul(g, sb), sha) : Tensor(), n[1] ? sum_to_shape(mul(g, sa), shb) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = on_host(a, b) ? cpu::map_binary(a, b, "div", [](auto p, auto q) { return p / q; })
                             : device_binary(backend::BinaryOp::div, a, b);
  if (auto rec = autograd::Recorder("div", {a, b})) {
    Shape sa = a.shape();
    Tensor sb = rec.save(b);
    Tensor so = rec.needs(1) ? rec.save(out) : Tensor();
    rec.finish(out, [sa, sb, so](const Tensor& g, const Needs& n) -> Grads {
      Tensor gb = g / sb;  // d(a/b)/da = 1/b ; d(a/b)/db = -(a/b)/b
      return {n[0] ? sum_to_shape(gb, sa) : Tensor(), n[1] ? sum_to_shape(neg(gb * so), sb.shape()) : Tensor()};
    });
  }
  return out;
}

Tensor add(const Tensor& a, double s) {
  Tensor out = a.device().is_cpu() ? cpu::map_unary(a, "add", [s](auto v) { return v + decltype(v)(s); })
                                   : device_unary(UnaryOp::add_scalar, a, s);
  if (auto rec = autograd::Recorder("add", {a}))
    rec.finish(out, [](const Tensor& g, const Needs&) -> Grads { return {g}; });
  return out;
}

Tensor mul(const Tensor& a, double s) {
  Tensor out = a.device().is_cpu() ? cpu::map_unary(a, "mul", [s](auto v) { return v * decltype(v)(s); })
                                   : device_unary(UnaryOp::mul_scalar, a, s);
  if (auto rec = autograd::Recorder("mul", {a}))
    rec.finish(out, [s](const Tensor& g, const Needs&) -> Grads { return {mul(g, s)}; });
  return out;
}

Tensor sub(double s, const Tensor& b) {
  Tensor out = b.device().is_cpu() ? cpu::map_unary(b, "sub", [s](auto v) { return decltype(v)(s) - v; })
                                   : device_unary(UnaryOp::rsub_scalar, b, s);
  if (auto rec = autograd::Recorder("sub", {b}))
    rec.finish(out, [](const Tensor& g, const Needs&) -> Grads { return {neg(g)}; });
  return out;
}

Tensor div(double s, const Tensor& b) {
  Tensor out = b.device().is_cpu() ? cpu::map_unary(b, "div", [s](auto v) { return decltype(v)(s) / v; })
                                   : device_unary(UnaryOp::rdiv_scalar, b, s);
  if (auto rec = autograd::Recorder("div", {b})) {
    Tensor sb = rec.save(b), so = rec.save(out);
    rec.finish(out, [sb, so](const Tensor& g, const Needs&) -> Grads { return {neg(g * so / sb)}; });
  }
  return out;
}

Tensor neg(const Tensor& a) {
  Tensor out = a.device().is_cpu() ? cpu::map_unary(a, "neg", [](auto v) { return -v; })
                                   : device_unary(UnaryOp::neg, a);
  if (auto rec = autograd::Recorder("neg", {a}))
    rec.finish(out, [](const Tensor& g, const Needs&) -> Grads { return {neg(g)}; });
  return out;
}

Tensor& add_(Tensor& a, const Tensor& b, double alpha) {
  autograd::check_inplace(a, "add_");
  if (!a.device().is_cpu() || !b.device().is_cpu()) {  // on a device: out of place, then copied back
    autograd::NoGradGuard no_grad;
    a.copy_(alpha == 1.0 ? add(a, b) : add(a, mul(b, alpha)));
    return a;
  }
  Shape shape = cpu::broadcast_shapes(a.shape(), b.shape(), "add_");
  if (shape != a.shape())
    throw std::invalid_argument("add_: " + shape_str(b.shape()) + " does not broadcast to " + shape_str(a.shape()));
  if (!is_floating(a.dtype()) || a.dtype() == DType::bf16 || a.dtype() == DType::f16) {
    a.copy_(add(a, mul(b, alpha)));  // rare: round through the compute type
    return a;
  }
  Tensor bb = b.dtype() == a.dtype() ? b : b.to(a.dtype());
  cpu::NdLoop<2> loop(a.shape(), {a.strides(), cpu::broadcast_strides(bb, a.shape())});
  cpu::dispatch_float(a.dtype(), "add_", [&]<class T>() {
    T* ap = a.data<T>();
    const T* bp = bb.data<T>();
    const T al = T(alpha);
    loop.run([&](const std::array<int64_t, 2>& base, const std::array<int64_t, 2>& inner, int64_t n) {
      T* ar = ap + base[0];
      const T* br = bp + base[1];
      for (int64_t i = 0; i < n; ++i) ar[i * inner[0]] += al * br[i * inner[1]];
    });
  });
  return a;
}

Tensor& mul_(Tensor& a, double s) {
  autograd::check_inplace(a, "mul_");
  if (!a.device().is_cpu()) {  // on a device: out of place, then copied back
    autograd::NoGradGuard no_grad;
    a.copy_(mul(a, s));
    return a;
  }
  if (!is_floating(a.dtype()) || a.dtype() == DType::bf16 || a.dtype() == DType::f16) {
    a.copy_(mul(a, s));
    return a;
  }
  cpu::NdLoop<1> loop(a.shape(), {a.strides()});
  cpu::dispatch_float(a.dtype(), "mul_", [&]<class T>() {
    T* ap = a.data<T>();
    const T sv = T(s);
    loop.run([&](const std::array<int64_t, 1>& base, const std::array<int64_t, 1>& inner, int64_t n) {
      for (int64_t i = 0; i < n; ++i) ap[base[0] + i * inner[0]] *= sv;
    });
  });
  return a;
}

}  // namespace rv
