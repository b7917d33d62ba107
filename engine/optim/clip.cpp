// clip.cpp: clip_grad_norm_ and clip_grad_value_ on raw pointers (see clip.h).
// The norms are deterministic blocked sums in double (engine/cpu/norm_kernel.h).
// Gradients on a device go to the backend instead: one multi-tensor launch for the L2 norm, one
// for the scaling, which reads the norm on the device (cuda/kernels/grad_norm.cu); the host waits
// only for the returned value. clip_grad_value_ there is clamp() copied back into the gradient.
#include "engine/optim/clip.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/math.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/norm_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv::optim {

namespace {

// The gradients to modify, each made contiguous and owned (a strided .grad is replaced by a
// dense copy, so the raw loops below can write it).
std::vector<Tensor> dense_grads(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> out;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (g.dtype() != DType::f32 && g.dtype() != DType::f64)
      throw std::runtime_error(std::string(op) + ": expected float32 or float64 gradients, got " +
                               dtype_name(g.dtype()));
    if (!g.is_contiguous()) {
      g = g.contiguous();
      Tensor q = p;
      q.set_grad(g);
    }
    out.push_back(g);
  }
  return out;
}

// clip_grad_norm_ for gradients on a device (all on one, see the file comment).
double clip_grad_norm_device(std::vector<Tensor>& grads, double max_norm, double norm_type, bool error_if_nonfinite) {
  const Device dev = grads[0].device();
  for (const auto& g : grads)
    if (g.device() != dev)
      throw std::invalid_argument("clip_grad_norm_: gradients on " + dev.str() + " and " + g.device().str() +
                                  "; all must be on one device");
  if (norm_type != 2.0)
    throw std::runtime_error("clip_grad_norm_: norm_type " + std::to_string(norm_type) + " is not implemented on " +
                             dev.str() + " yet (2 is)");
  backend::DeviceBackend& be = backend::get(dev);
  const Tensor norm = be.l2_norm_multi(grads);
  double total = 0.0;
  if (error_if_nonfinite) {  // the check needs the value before any gradient changes
    total = norm.item();
    if (!std::isfinite(total))
      throw std::runtime_error("clip_grad_norm_: the total norm of order 2 of the gradients is non-finite (" +
                               std::to_string(total) + "), so it cannot be clipped");
  }
  be.scale_by_norm(grads, norm, max_norm);  // queued behind the norm; reads it on the device
  if (!error_if_nonfinite) total = norm.item();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef))
    for (auto& g : grads) g.storage()->bump_version();  // the kernel scaled them (same rule as the CPU)
  return total;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  if (!(norm_type > 0.0))
    throw std::invalid_argument("clip_grad_norm_: norm_type must be > 0 or infinity, got " + std::to_string(norm_type));
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> grads = dense_grads(params, "clip_grad_norm_");
  if (grads.empty()) return 0.0;
  if (!grads[0].device().is_cpu()) return clip_grad_norm_device(grads, max_norm, norm_type, error_if_nonfinite);
  const bool inf = std::isinf(norm_type);
  double acc = 0.0;
  for (const auto& g : grads) {
    double part = cpu::dispatch_float(g.dtype(), "clip_grad_norm_", [&]<class T>() {
      const T* x = g.data<T>();
      if (inf) return cpu::max_abs(x, g.numel());
      if (norm_type == 2.0) return cpu::sum_squares(x, g.numel());
      return cpu::sum_abs_pow(x, g.numel(), norm_type);
    });
    acc = inf ? ((part > acc || std::isnan(part)) ? part : acc) : acc + part;
  }
  double total = inf ? acc : (norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type));
  if (error_if_nonfinite && !std::isfinite(total))
    throw std::runtime_error("clip_grad_norm_: the total norm of order " + std::to_string(norm_type) +
                             " of the gradients is non-finite (" + std::to_string(total) +
                             "), so it cannot be clipped");
  // torch multiplies even when the coefficient is clamped to 1; the result is the same.
  double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {
    for (auto& g : grads) {
      g.storage()->bump_version();
      cpu::dispatch_float(g.dtype(), "clip_grad_norm_", [&]<class T>() {
        T* x = g.data<T>();
        const T c = T(coef);
        cpu::parallel_for(g.numel(), 32768, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) x[i] *= c;
        });
      });
    }
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  if (!(clip_value >= 0.0))
    throw std::invalid_argument("clip_grad_value_: clip_value must be >= 0, got " + std::to_string(clip_value));
  autograd::NoGradGuard no_grad;
  for (auto& g : dense_grads(params, "clip_grad_value_")) {
    if (!g.device().is_cpu()) {  // the backend's clamp kernel, copied back into the gradient
      g.copy_(clamp(g, -clip_value, clip_value));
      continue;
    }
    g.storage()->bump_version();
    cpu::dispatch_float(g.dtype(), "clip_grad_value_", [&]<class T>() {
      T* x = g.data<T>();
      const T hi = T(clip_value), lo = T(-clip_value);
      cpu::parallel_for(g.numel(), 32768, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
      });
    });
  }
}

}  // namespace rv::optim
