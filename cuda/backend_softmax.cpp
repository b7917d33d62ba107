// backend_softmax.cpp: the CUDA backend's softmax / log_softmax over the last dim (forward and
// fused backward) and cross entropy with class-index targets (forward, reduction, backward).
// Each method checks its arguments, allocates the outputs and calls the launchers of
// cuda/kernels/softmax.cu and cuda/kernels/cross_entropy.cu on the device's compute stream.
// Nothing here reads device memory from the host, so no call waits for the device.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/cross_entropy.h"
#include "cuda/kernels/softmax.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// Throws "<op>: dtype X is not implemented on cuda:N yet (...)" unless f32, bf16 or f64.
void require_softmax_dtype(const Tensor& t, const char* op) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::bf16 && t.dtype() != DType::f64)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (float32, bfloat16 and float64 are)");
}

void require_contiguous(const Tensor& t, const char* op, const char* arg) {
  if (!t.is_contiguous())
    throw std::invalid_argument(std::string(op) + ": the CUDA kernel expects a contiguous " + arg +
                                " (the op makes it so before calling the backend)");
}

void require_same_device(const Tensor& a, const Tensor& b, const char* op, const char* arg) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": " + arg + " is on " + b.device().str() + ", expected " +
                                a.device().str());
}

// The math dtype of the per-row buffers: f32 for f32 / bf16 inputs, f64 for f64.
DType math_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

// (rows, len) of a tensor seen as rows over its last dim (a 0-d tensor is one row of 1).
void rows_of(const Tensor& t, int64_t& rows, int64_t& len) {
  len = t.dim() == 0 ? 1 : t.shape().back();
  rows = len == 0 ? 0 : t.numel() / len;
}

}  // namespace

Tensor CudaBackend::softmax_last_dim(const Tensor& x, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  require_softmax_dtype(x, op);
  require_contiguous(x, op, "input");
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  int64_t rows = 0, len = 0;
  rows_of(x, rows, len);
  if (x.numel() == 0) return y;
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_softmax_forward(x.dtype(), log, x.device_data(), y.device_data(), rows, len, compute_stream(dev));
  return y;
}

Tensor CudaBackend::softmax_last_dim_backward(const Tensor& dy, const Tensor& y, bool log) {
  const char* op = log ? "log_softmax backward" : "softmax backward";
  require_softmax_dtype(y, op);
  require_same_device(y, dy, op, "the incoming gradient");
  if (dy.shape() != y.shape() || dy.dtype() != y.dtype())
    throw std::invalid_argument(std::string(op) + ": expected the gradient as " + shape_str(y.shape()) + " " +
                                dtype_name(y.dtype()) + " (the output's), got " + shape_str(dy.shape()) + " " +
                                dtype_name(dy.dtype()));
  require_contiguous(dy, op, "gradient");
  require_contiguous(y, op, "output");
  Tensor dx = empty(y.shape(), y.dtype(), y.device());
  int64_t rows = 0, len = 0;
  rows_of(y, rows, len);
  if (y.numel() == 0) return dx;
  const int dev = y.device().index;
  DeviceGuard g(dev);
  launch_softmax_backward(y.dtype(), log, dy.device_data(), y.device_data(), dx.device_data(), rows, len,
                          compute_stream(dev));
  return dx;
}

Tensor CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                                  double label_smoothing, LossReduction reduction, Tensor& lse, Tensor& count) {
  const char* op = "cross_entropy";
  require_softmax_dtype(logits, op);
  require_same_device(logits, target, op, "target");
  if (logits.dim() != 2 || target.dim() != 1 || target.shape()[0] != logits.shape()[0])
    throw std::invalid_argument("cross_entropy: the CUDA kernel expects logits (R, K) and target (R), got " +
                                shape_str(logits.shape()) + " and " + shape_str(target.shape()));
  if (target.dtype() != DType::i64)
    throw std::runtime_error("cross_entropy: target dtype " + std::string(dtype_name(target.dtype())) +
                             " is not implemented on " + target.device().str() + " yet (int64 is)");
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(label_smoothing));
  require_contiguous(logits, op, "logits");
  require_contiguous(target, op, "target");
  const int64_t R = logits.shape()[0], K = logits.shape()[1];
  if (K == 0 && R > 0)
    throw std::invalid_argument("cross_entropy: logits " + shape_str(logits.shape()) + " have no classes");
  const Device device = logits.device();
  const DType mt = math_dtype(logits.dtype());
  Tensor loss = empty({R}, mt, device);
  Tensor valid = empty({R}, mt, device);
  lse = empty({R}, mt, device);
  count = Tensor();
  const int dev = device.index;
  DeviceGuard g(dev);
  cudaStream_t s = compute_stream(dev);
  launch_cross_entropy_forward(logits.dtype(), logits.device_data(), static_cast<const int64_t*>(target.device_data()),
                               R, K, ignore_index, label_smoothing, loss.device_data(), lse.device_data(),
                               valid.device_data(), s);
  if (reduction == LossReduction::none) {
    if (logits.dtype() == mt) return loss;  // already the logits' dtype
    Tensor out = empty({R}, logits.dtype(), device);
    launch_cross_entropy_cast(logits.dtype(), loss.device_data(), out.device_data(), R, s);
    return out;
  }
  Tensor out = empty({}, logits.dtype(), device);
  count = empty({}, mt, device);
  launch_cross_entropy_reduce(logits.dtype(), loss.device_data(), valid.device_data(), R,
                              reduction == LossReduction::mean, out.device_data(), count.device_data(), s);
  return out;
}

Tensor CudaBackend::cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                                           const Tensor& lse, const Tensor& count, int64_t ignore_index,
                                           double label_smoothing, LossReduction reduction) {
  const char* op = "cross_entropy backward";
  require_softmax_dtype(logits, op);
  require_same_device(logits, grad, op, "the incoming gradient");
  require_same_device(logits, target, op, "target");
  require_same_device(logits, lse, op, "lse");
  if (logits.dim() != 2 || target.shape() != Shape{logits.shape()[0]} || lse.shape() != target.shape())
    throw std::invalid_argument("cross_entropy backward: expected logits (R, K), target (R) and lse (R), got " +
                                shape_str(logits.shape()) + ", " + shape_str(target.shape()) + " and " +
                                shape_str(lse.shape()));
  const int64_t R = logits.shape()[0], K = logits.shape()[1];
  const bool per_row = reduction == LossReduction::none;
  const Shape want = per_row ? Shape{R} : Shape{};
  if (grad.shape() != want || grad.dtype() != logits.dtype())
    throw std::invalid_argument("cross_entropy backward: expected the gradient as " + shape_str(want) + " " +
                                dtype_name(logits.dtype()) + ", got " + shape_str(grad.shape()) + " " +
                                dtype_name(grad.dtype()));
  const DType mt = math_dtype(logits.dtype());
  if (lse.dtype() != mt)
    throw std::invalid_argument("cross_entropy backward: expected lse in " + std::string(dtype_name(mt)));
  if (reduction == LossReduction::mean && (!count.defined() || count.dtype() != mt || count.numel() != 1))
    throw std::invalid_argument("cross_entropy backward: reduction mean needs the forward's count (a " +
                                std::string(dtype_name(mt)) + " scalar)");
  require_contiguous(grad, op, "gradient");
  require_contiguous(logits, op, "logits");
  require_contiguous(target, op, "target");
  require_contiguous(lse, op, "lse");
  Tensor dx = empty(logits.shape(), logits.dtype(), logits.device());
  if (dx.numel() == 0) return dx;
  const int dev = logits.device().index;
  DeviceGuard g(dev);
  launch_cross_entropy_backward(logits.dtype(), grad.device_data(), per_row,
                                reduction == LossReduction::mean ? count.device_data() : nullptr,
                                logits.device_data(), static_cast<const int64_t*>(target.device_data()),
                                lse.device_data(), R, K, ignore_index, label_smoothing, dx.device_data(),
                                compute_stream(dev));
  return dx;
}

}  // namespace rv::cuda
