// backend_optim.cpp: the CUDA backend's optimizer kernels: the fused multi-tensor AdamW step,
// the L2 norm of many gradients, and clip_grad_norm_'s scaling (see engine/backend.h).
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/adamw.h"
#include "cuda/kernels/grad_norm.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// Every tensor on `dev`, contiguous, of `dtype` (f32 or f64).
void require_operand(const Tensor& t, Device dev, DType dtype, const char* op, const char* what) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": " + what + " is undefined");
  if (t.device() != dev)
    throw std::invalid_argument(std::string(op) + ": " + what + " is on " + t.device().str() + ", expected " +
                                dev.str());
  if (t.dtype() != dtype)
    throw std::invalid_argument(std::string(op) + ": " + what + " is " + dtype_name(t.dtype()) +
                                ", expected one dtype (" + dtype_name(dtype) + ") across the whole call");
  if (!t.is_contiguous()) throw std::invalid_argument(std::string(op) + ": " + what + " must be contiguous");
}

std::vector<NormEntry> norm_entries(const std::vector<Tensor>& tensors, const char* op) {
  std::vector<NormEntry> entries;
  if (tensors.empty()) return entries;
  const Device dev = tensors[0].device();
  const DType dt = tensors[0].dtype();
  require_float32_or_64(tensors[0], op);
  for (const Tensor& t : tensors) {
    require_operand(t, dev, dt, op, "a gradient");
    entries.push_back(NormEntry{t.device_data(), t.numel(), 0});
  }
  return entries;
}

}  // namespace

void CudaBackend::adamw_step(const std::vector<AdamWParam>& params) {
  if (params.empty()) return;
  const Tensor& p0 = *params[0].param;
  const Device dev = p0.device();
  require_float32_or_64(p0, "AdamW");
  std::vector<AdamWEntry> entries;
  entries.reserve(params.size());
  for (const AdamWParam& a : params) {
    require_operand(*a.param, dev, p0.dtype(), "AdamW", "a parameter");
    const Shape& shape = a.param->shape();
    if (!a.grad || !a.exp_avg || !a.exp_avg_sq)
      throw std::invalid_argument("AdamW: a parameter's grad / exp_avg / exp_avg_sq is missing");
    for (const Tensor* t : {a.grad, a.exp_avg, a.exp_avg_sq, a.max_exp_avg_sq}) {
      if (!t) continue;  // max_exp_avg_sq without amsgrad
      require_operand(*t, dev, p0.dtype(), "AdamW", "a gradient or state buffer");
      if (t->shape() != shape)
        throw std::invalid_argument("AdamW: a gradient or state buffer of shape " + shape_str(t->shape()) +
                                    " for a parameter of shape " + shape_str(shape));
    }
    // The scalars exactly as engine/optim/adamw.cpp computes them, in double.
    const double bc1 = 1.0 - std::pow(a.beta1, double(a.step));
    const double bc2 = 1.0 - std::pow(a.beta2, double(a.step));
    AdamWEntry e;
    e.param = a.param->device_data();
    e.grad = a.grad->device_data();
    e.exp_avg = a.exp_avg->device_data();
    e.exp_avg_sq = a.exp_avg_sq->device_data();
    e.max_exp_avg_sq = a.max_exp_avg_sq ? a.max_exp_avg_sq->device_data() : nullptr;
    e.numel = a.param->numel();
    e.decay = 1.0 - a.lr * a.weight_decay;
    e.w1 = 1.0 - a.beta1;
    e.b2 = a.beta2;
    e.w2 = 1.0 - a.beta2;
    e.bc2_sqrt = std::sqrt(bc2);
    e.eps = a.eps;
    e.neg_step = -(a.lr / bc1);
    entries.push_back(e);
  }
  // The table's scratch goes back to the allocator at the end of this call; the allocator
  // hands it out again only in stream order, after the kernel has read it.
  Tensor table = empty({int64_t(adamw_table_bytes(entries.size()))}, DType::u8, dev);
  const int index = dev.index;
  DeviceGuard g(index);
  launch_adamw(std::move(entries), p0.dtype(), table.device_data(), compute_stream(index));
}

Tensor CudaBackend::l2_norm_multi(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) throw std::invalid_argument("clip_grad_norm_: l2_norm_multi needs at least one tensor");
  std::vector<NormEntry> entries = norm_entries(tensors, "clip_grad_norm_");
  const Device dev = tensors[0].device();
  Tensor norm = empty({}, DType::f64, dev);
  Tensor table = empty({int64_t(norm_table_bytes(entries.size()))}, DType::u8, dev);
  Tensor partials = empty({norm_partials(entries)}, DType::f64, dev);
  DeviceGuard g(dev.index);
  launch_l2_norm(std::move(entries), tensors[0].dtype(), table.device_data(),
                 static_cast<double*>(partials.device_data()), static_cast<double*>(norm.device_data()),
                 compute_stream(dev.index));
  return norm;
}

void CudaBackend::scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm) {
  if (tensors.empty()) return;
  std::vector<NormEntry> entries = norm_entries(tensors, "clip_grad_norm_");
  const Device dev = tensors[0].device();
  require_operand(norm, dev, DType::f64, "clip_grad_norm_", "the norm");
  if (norm.numel() != 1) throw std::invalid_argument("clip_grad_norm_: the norm must be one element");
  Tensor table = empty({int64_t(norm_table_bytes(entries.size()))}, DType::u8, dev);
  DeviceGuard g(dev.index);
  launch_scale_by_norm(std::move(entries), tensors[0].dtype(), table.device_data(),
                       static_cast<const double*>(norm.device_data()), max_norm, compute_stream(dev.index));
}

}  // namespace rv::cuda
