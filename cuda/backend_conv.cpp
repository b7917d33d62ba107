// backend_conv.cpp: the CUDA backend's choice of convolution (ROPEVIT_CONV=ours|cudnn) and the
// three cuDNN convolutions behind `cudnn` (cuda/kernels/cudnn_conv.cpp). `ours` (im2col + our GEMM)
// is composed by engine/ops/conv_device.cpp from other entries; it never comes here.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/cudnn_conv.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

using ConvImpl = backend::DeviceBackend::ConvImpl;

// The env switch; cudnn in a build without it is an error here, at the first convolution.
ConvImpl conv_impl_from_env() {
  const char* v = std::getenv("ROPEVIT_CONV");
  if (!v || !*v) return ConvImpl::ours;
  const std::string s(v);
  if (s == "ours") return ConvImpl::ours;
  if (s == "cudnn") {
    if (!cudnn_built_in()) throw std::runtime_error("ROPEVIT_CONV=cudnn: " + cudnn_unavailable_reason());
    return ConvImpl::cudnn;
  }
  throw std::invalid_argument("ROPEVIT_CONV must be ours or cudnn, got '" + s + "'");
}

// The process-wide choice (one CudaBackend exists), read from the environment on first use (a
// throwing read is retried at the next call, so the error repeats rather than being forgotten).
std::atomic<ConvImpl>& current_conv_impl() {
  static std::atomic<ConvImpl> impl{conv_impl_from_env()};
  return impl;
}

CudnnDType cudnn_dtype_of(const Tensor& t, const char* op) {
  switch (t.dtype()) {
    case DType::f32: return CudnnDType::f32;
    case DType::f64: return CudnnDType::f64;
    case DType::bf16: return CudnnDType::bf16;
    default:
      throw std::runtime_error(std::string(op) + " (cuDNN): dtype " + dtype_name(t.dtype()) +
                               " is not implemented on " + t.device().str() + " (f32, f64 and bf16 are)");
  }
}

// The problem of conv2d with x (B, C, H, W) and w (O, C/G, KH, KW): both given as shapes, since the
// input-gradient pass has no x and the weight-gradient pass no w; `any` gives the dtype. Checks what the op front-end
// already guarantees, so that a wrong call from elsewhere fails here and not inside cuDNN.
CudnnConvArgs conv_args(const char* op, const Shape& xs, const Shape& ws, const Tensor& any,
                        const backend::DeviceBackend::ConvWindow& win) {
  if (xs.size() != 4 || ws.size() != 4)
    throw std::invalid_argument(std::string(op) + " (cuDNN): expected 4-D x and weight, got " + shape_str(xs) +
                                " and " + shape_str(ws));
  CudnnConvArgs a;
  a.B = xs[0];
  a.C = xs[1];
  a.H = xs[2];
  a.W = xs[3];
  a.O = ws[0];
  a.KH = ws[2];
  a.KW = ws[3];
  a.Ho = win.Ho;
  a.Wo = win.Wo;
  a.stride_h = win.stride_h;
  a.stride_w = win.stride_w;
  a.pad_h = win.pad_h;
  a.pad_w = win.pad_w;
  a.dil_h = win.dil_h;
  a.dil_w = win.dil_w;
  a.groups = win.groups;
  a.dtype = cudnn_dtype_of(any, op);
  if (win.groups < 1 || a.C % win.groups != 0 || a.O % win.groups != 0 || ws[1] * win.groups != a.C ||
      win.KH != a.KH || win.KW != a.KW)
    throw std::invalid_argument(std::string(op) + " (cuDNN): x " + shape_str(xs) + " and weight " + shape_str(ws) +
                                " do not fit groups=" + std::to_string(win.groups) + " and the window");
  return a;
}

void require_conv_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + " (cuDNN): both operands must have one dtype, got " +
                                dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + " (cuDNN): operands on different devices");
}

// A fresh zero tensor: the convolution of an empty input (C = 0, or B = 0 for the weight gradient).
Tensor zeros_on(const Shape& shape, DType dt, Device dev, backend::DeviceBackend& b) {
  Tensor t = empty(shape, dt, dev);
  if (t.numel() > 0) b.memset(t.device_data(), 0, size_t(t.numel()) * t.itemsize(), dev.index);
  return t;
}

}  // namespace

void CudaBackend::set_conv_impl(ConvImpl impl) {
  if (impl == ConvImpl::cudnn && !cudnn_built_in())
    throw std::runtime_error("conv2d: cuDNN was asked for, but " + cudnn_unavailable_reason());
  current_conv_impl().store(impl);
}
CudaBackend::ConvImpl CudaBackend::conv_impl() const { return current_conv_impl().load(); }

Tensor CudaBackend::conv2d_forward(const Tensor& x_in, const Tensor& w_in, const ConvWindow& win) {
  const char* op = "conv2d";
  require_conv_dtype(op, x_in, w_in);
  const CudnnConvArgs a = conv_args(op, x_in.shape(), w_in.shape(), x_in, win);
  const Device dev = x_in.device();
  if (a.B * a.C * a.H * a.W == 0 || a.O * a.KH * a.KW == 0)
    return zeros_on({a.B, a.O, a.Ho, a.Wo}, x_in.dtype(), dev, *this);
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  Tensor y = empty({a.B, a.O, a.Ho, a.Wo}, x.dtype(), dev);
  DeviceGuard g(dev.index);
  cudnn_conv_forward(a, x.device_data(), w.device_data(), y.device_data(), dev.index, compute_stream(dev.index));
  return y;
}

Tensor CudaBackend::conv2d_input_grad(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                                      const ConvWindow& win) {
  const char* op = "conv2d input gradient";
  require_conv_dtype(op, dy_in, w_in);
  const CudnnConvArgs a = conv_args(op, x_shape, w_in.shape(), dy_in, win);
  const Device dev = dy_in.device();
  if (dy_in.shape() != Shape{a.B, a.O, a.Ho, a.Wo})
    throw std::invalid_argument(std::string(op) + " (cuDNN): dy " + shape_str(dy_in.shape()) + " is not the output " +
                                shape_str({a.B, a.O, a.Ho, a.Wo}));
  if (a.B * a.C * a.H * a.W == 0 || a.O * a.KH * a.KW * a.Ho * a.Wo == 0)
    return zeros_on(x_shape, dy_in.dtype(), dev, *this);
  const Tensor dy = dy_in.contiguous(), w = w_in.contiguous();
  Tensor dx = empty(x_shape, dy.dtype(), dev);
  DeviceGuard g(dev.index);
  cudnn_conv_backward_data(a, dy.device_data(), w.device_data(), dx.device_data(), dev.index,
                           compute_stream(dev.index));
  return dx;
}

Tensor CudaBackend::conv2d_weight_grad(const Tensor& x_in, const Tensor& dy_in, const Shape& w_shape,
                                       const ConvWindow& win) {
  const char* op = "conv2d weight gradient";
  require_conv_dtype(op, x_in, dy_in);
  const CudnnConvArgs a = conv_args(op, x_in.shape(), w_shape, x_in, win);
  const Device dev = x_in.device();
  if (dy_in.shape() != Shape{a.B, a.O, a.Ho, a.Wo})
    throw std::invalid_argument(std::string(op) + " (cuDNN): dy " + shape_str(dy_in.shape()) + " is not the output " +
                                shape_str({a.B, a.O, a.Ho, a.Wo}));
  if (a.B * a.C * a.H * a.W == 0 || a.O * a.KH * a.KW * a.Ho * a.Wo == 0)
    return zeros_on(w_shape, x_in.dtype(), dev, *this);
  const Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  Tensor dw = empty(w_shape, x.dtype(), dev);
  DeviceGuard g(dev.index);
  cudnn_conv_backward_filter(a, x.device_data(), dy.device_data(), dw.device_data(), dev.index,
                             compute_stream(dev.index));
  return dw;
}

}  // namespace rv::cuda
