// backend_activation.cpp: the CUDA backend's pointwise activations (gelu, gelu tanh, relu, silu,
// sigmoid), forward and backward: checks, contiguous inputs, fresh outputs, and the launchers of
// cuda/kernels/activation.cu on the compute stream.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/activation.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

using Activation = backend::DeviceBackend::Activation;

ActivationKind kind_of(Activation a) {
  switch (a) {
    case Activation::gelu: return ActivationKind::gelu;
    case Activation::gelu_tanh: return ActivationKind::gelu_tanh;
    case Activation::relu: return ActivationKind::relu;
    case Activation::silu: return ActivationKind::silu;
    case Activation::sigmoid: return ActivationKind::sigmoid;
  }
  throw std::invalid_argument("activation: unknown activation");
}

void require_f32_or_bf16(const Tensor& t, const std::string& op) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::bf16)
    throw std::runtime_error(op + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " + t.device().str() +
                             " yet (f32 and bf16 are)");
}

}  // namespace

Tensor CudaBackend::activation_forward(Activation a, const Tensor& x) {
  require_f32_or_bf16(x, activation_name(a));
  const Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_activation_forward(kind_of(a), x.dtype(), xc.device_data(), y.device_data(), x.numel(), compute_stream(dev));
  return y;
}

Tensor CudaBackend::activation_backward(Activation a, const Tensor& saved, const Tensor& dy) {
  const std::string op = std::string(activation_name(a)) + " backward";
  require_f32_or_bf16(saved, op);
  if (dy.shape() != saved.shape() || dy.dtype() != saved.dtype() || dy.device() != saved.device())
    throw std::invalid_argument(op + ": dy must have the saved tensor's shape, dtype and device (" +
                                shape_str(saved.shape()) + " " + dtype_name(saved.dtype()) + " on " +
                                saved.device().str() + "), got " + shape_str(dy.shape()) + " " + dtype_name(dy.dtype()) +
                                " on " + dy.device().str());
  const Tensor sc = saved.contiguous(), gc = dy.contiguous();
  Tensor dx = empty(saved.shape(), saved.dtype(), saved.device());
  const int dev = saved.device().index;
  DeviceGuard g(dev);
  launch_activation_backward(kind_of(a), saved.dtype(), sc.device_data(), gc.device_data(), dx.device_data(),
                             saved.numel(), compute_stream(dev));
  return dx;
}

}  // namespace rv::cuda
