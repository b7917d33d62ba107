// backend_reduce_unary.cpp: the CUDA backend's unary / tensor-scalar math (neg, exp, ...,
// clamp), the fused gradient maps of the math ops, and the sum over a subset of dims.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/elementwise_unary.h"
#include "cuda/kernels/reduce_dims.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// f32, f64 and bf16 (stored bf16, computed in f32); other dtypes throw naming the op.
void require_unary_dtype(const Tensor& t, const char* op) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::bf16)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (f32, f64 and bf16 are)");
}

}  // namespace

Tensor CudaBackend::unary(UnaryOp op, const Tensor& x, double a, double b) {
  const char* name = unary_op_name(op);
  require_unary_dtype(x, name);
  Tensor z = empty(x.shape(), x.dtype(), x.device());
  if (z.numel() == 0) return z;
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_unary(op, x.dtype(), z.device_data(), x.device_data(), x.strides(), x.shape(), a, b, compute_stream(dev));
  return z;
}

Tensor CudaBackend::unary_backward(UnaryOp op, const Tensor& g, const Tensor& s, double a, double b) {
  const char* name = unary_op_name(op);
  require_unary_dtype(g, name);
  if (g.device() != s.device())
    throw std::invalid_argument(std::string(name) + " backward: gradient on " + g.device().str() +
                                " but the saved tensor on " + s.device().str());
  if (g.dtype() != s.dtype() || g.shape() != s.shape())
    throw std::invalid_argument(std::string(name) + " backward: gradient " + dtype_name(g.dtype()) +
                                shape_str(g.shape()) + " does not match the saved tensor " + dtype_name(s.dtype()) +
                                shape_str(s.shape()));
  const Tensor gc = g.contiguous(), sc = s.contiguous();
  Tensor out = empty(g.shape(), g.dtype(), g.device());
  if (out.numel() == 0) return out;
  const int dev = g.device().index;
  DeviceGuard guard(dev);
  launch_unary_backward(op, g.dtype(), out.device_data(), gc.device_data(), sc.device_data(), out.numel(), a, b,
                        compute_stream(dev));
  return out;
}

Tensor CudaBackend::sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) {
  require_unary_dtype(x, "sum");
  if (reduced.size() != size_t(x.dim()))
    throw std::invalid_argument("sum: " + std::to_string(reduced.size()) + " dim flags for a tensor of " +
                                std::to_string(x.dim()) + " dims");
  Shape out_shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!reduced[size_t(d)]) out_shape.push_back(x.shape()[d]);
    else if (keepdim) out_shape.push_back(1);
  }
  Tensor out = empty(out_shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const SumDimsPlan plan = plan_sum_dims(x.shape(), x.strides(), reduced);
  Tensor scratch = plan.scratch_doubles() > 0 ? empty({plan.scratch_doubles()}, DType::f64, x.device()) : Tensor();
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_sum_dims(plan, x.dtype(), out.device_data(), x.device_data(),
                  scratch.defined() ? static_cast<double*>(scratch.device_data()) : nullptr, compute_stream(dev));
  return out;
}

}  // namespace rv::cuda
