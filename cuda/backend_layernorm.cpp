// backend_layernorm.cpp: the CUDA backend's layer norm, forward and backward: argument checks,
// outputs and scratch, then the launchers of cuda/kernels/layernorm.cu on the compute stream.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/layernorm.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// f32 or bf16 x; weight / bias f32 or x's dtype, one dtype when both are given, C values each.
// Returns the parameters' dtype (f32 when there are none).
DType check_layer_norm(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias, const char* op) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::bf16)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(x.dtype()) + " is not implemented on " +
                             x.device().str() + " yet (f32 and bf16 are)");
  if (C <= 0 || x.numel() % C != 0)
    throw std::invalid_argument(std::string(op) + ": C = " + std::to_string(C) + " must be positive and divide " +
                                "the input's " + std::to_string(x.numel()) + " elements");
  DType pd = DType::f32;
  bool have = false;
  for (auto [t, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    if (t->device() != x.device())
      throw std::invalid_argument(std::string(op) + ": " + name + " is on " + t->device().str() + ", the input on " +
                                  x.device().str() + "; move one with .to(device)");
    if (t->numel() != C)
      throw std::invalid_argument(std::string(op) + ": " + name + " must have " + std::to_string(C) +
                                  " elements, got " + shape_str(t->shape()));
    if (t->dtype() != DType::f32 && t->dtype() != x.dtype())
      throw std::runtime_error(std::string(op) + ": " + name + " dtype " + dtype_name(t->dtype()) + " with input " +
                               dtype_name(x.dtype()) + " is not implemented on " + x.device().str() +
                               " yet (f32 or the input's dtype is)");
    if (have && t->dtype() != pd)
      throw std::runtime_error(std::string(op) + ": weight and bias of different dtypes (" + dtype_name(pd) + ", " +
                               dtype_name(t->dtype()) + ") are not implemented on " + x.device().str() + " yet");
    pd = t->dtype();
    have = true;
  }
  return pd;
}

// A contiguous version of an optional tensor.
Tensor dense(const Tensor& t) { return t.defined() ? t.contiguous() : t; }

const void* ptr(const Tensor& t) { return t.defined() ? t.device_data() : nullptr; }

}  // namespace

Tensor CudaBackend::layer_norm_forward(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias,
                                       double eps, Tensor& mean, Tensor& rstd) {
  const DType pd = check_layer_norm(x, C, weight, bias, "layer_norm");
  const Tensor xc = x.contiguous(), wc = dense(weight), bc = dense(bias);
  const int64_t rows = x.numel() / C;
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  mean = empty({rows}, DType::f32, x.device());
  rstd = empty({rows}, DType::f32, x.device());
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_layer_norm_forward({x.dtype(), pd, rows, C}, xc.device_data(), ptr(wc), ptr(bc), y.device_data(),
                            static_cast<float*>(mean.device_data()), static_cast<float*>(rstd.device_data()),
                            float(eps), compute_stream(dev));
  return y;
}

void CudaBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, int64_t c, const Tensor& weight,
                                      const Tensor& bias, const Tensor& mean, const Tensor& rstd, bool need_dx,
                                      bool need_dweight, bool need_dbias, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const DType pd = check_layer_norm(x, c, weight, bias, "layer_norm backward");
  if (dy.shape() != x.shape() || dy.dtype() != x.dtype() || dy.device() != x.device())
    throw std::invalid_argument("layer_norm backward: dy must have x's shape, dtype and device, got " +
                                shape_str(dy.shape()) + " " + dtype_name(dy.dtype()) + " on " + dy.device().str());
  const int64_t r = x.numel() / c;
  if (mean.numel() != r || rstd.numel() != r || mean.dtype() != DType::f32 || rstd.dtype() != DType::f32)
    throw std::invalid_argument("layer_norm backward: mean and rstd must be f32 with " + std::to_string(r) +
                                " elements (one per row)");
  if (need_dweight && !weight.defined())
    throw std::invalid_argument("layer_norm backward: dweight asked for without a weight");
  if (need_dbias && !bias.defined())
    throw std::invalid_argument("layer_norm backward: dbias asked for without a bias");
  const Tensor dyc = dy.contiguous(), xc = x.contiguous(), wc = dense(weight);
  const Tensor mc = mean.contiguous(), rc = rstd.contiguous();
  dx = need_dx ? empty(x.shape(), x.dtype(), x.device()) : Tensor();
  dweight = need_dweight ? empty({c}, weight.dtype(), x.device()) : Tensor();
  dbias = need_dbias ? empty({c}, bias.dtype(), x.device()) : Tensor();
  if (!need_dx && !need_dweight && !need_dbias) return;
  const bool params = need_dweight || need_dbias;
  Tensor scratch = params ? empty({layer_norm_backward_scratch(r, c)}, DType::f32, x.device()) : Tensor();
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_layer_norm_backward({x.dtype(), pd, r, c}, dyc.device_data(), xc.device_data(), ptr(wc),
                             static_cast<const float*>(mc.device_data()), static_cast<const float*>(rc.device_data()),
                             need_dx ? dx.device_data() : nullptr, need_dweight ? dweight.device_data() : nullptr,
                             need_dbias ? dbias.device_data() : nullptr,
                             params ? static_cast<float*>(scratch.device_data()) : nullptr, compute_stream(dev));
}

}  // namespace rv::cuda
