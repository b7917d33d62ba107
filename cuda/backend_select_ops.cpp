// backend_select_ops.cpp: the CUDA backend's ops that convert, compare or pick values: dtype
// conversion (to(dtype), copy_ between dtypes), the comparisons, where (and masked_fill through
// it), max / min / argmax / argmin along one dim with their backward, and dropout / drop_path
// with the mask drawn on the device. Each method checks its arguments, makes the device current,
// allocates the output and calls one launcher from cuda/kernels/ on the compute stream.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/compare_where.h"
#include "cuda/kernels/convert.h"
#include "cuda/kernels/dropout.h"
#include "cuda/kernels/minmax_dim.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// f32, f64 and bf16 (bf16 compared / computed in f32); other dtypes throw naming the op.
void require_f32_f64_bf16(const Tensor& t, const char* op) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::bf16)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (f32, f64 and bf16 are)");
}

void require_same_device(const Tensor& a, const Tensor& b, const char* op, const char* what) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": " + what + " is on " + b.device().str() + ", expected " +
                                a.device().str() + " like the other inputs; move it with .to(device) first");
}

}  // namespace

void CudaBackend::convert(const Tensor& dst, const Tensor& src) {
  require_same_device(dst, src, "to(dtype)", "the source");
  if (dst.numel() == 0) return;
  const int dev = dst.device().index;
  DeviceGuard g(dev);
  launch_convert(dst.dtype(), dst.device_data(), dst.strides(), src.dtype(), src.device_data(),
                 broadcast_strides_to(src, dst.shape()), dst.shape(), compute_stream(dev));
}

Tensor CudaBackend::compare(CompareOp op, const Tensor& a, const Tensor& b) {
  const char* name = compare_op_name(op);
  require_same_device(a, b, name, "the second operand");
  if (a.dtype() != b.dtype() || (a.dtype() != DType::f32 && a.dtype() != DType::f64 && a.dtype() != DType::i64))
    throw std::invalid_argument(std::string(name) + ": the backend compares two f32, f64 or i64 tensors, got " +
                                dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  const Shape shape = broadcast_shape(a.shape(), b.shape(), name);
  Tensor out = empty(shape, DType::boolean, a.device());
  if (out.numel() == 0) return out;
  const int dev = a.device().index;
  DeviceGuard g(dev);
  launch_compare(op, a.dtype(), static_cast<bool*>(out.device_data()), a.device_data(), broadcast_strides_to(a, shape),
                 b.device_data(), broadcast_strides_to(b, shape), shape, compute_stream(dev));
  return out;
}

Tensor CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  require_same_device(cond, a, "where", "a");
  require_same_device(cond, b, "where", "b");
  if (cond.dtype() != DType::boolean)
    throw std::invalid_argument(std::string("where: expected cond to be a bool tensor, got ") +
                                dtype_name(cond.dtype()));
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string("where: the backend selects between tensors of one dtype, got ") +
                                dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  const Shape shape = broadcast_shape(broadcast_shape(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const int dev = a.device().index;
  DeviceGuard g(dev);
  launch_where(a.itemsize(), out.device_data(), static_cast<const bool*>(cond.device_data()),
               broadcast_strides_to(cond, shape), a.device_data(), broadcast_strides_to(a, shape), b.device_data(),
               broadcast_strides_to(b, shape), shape, compute_stream(dev));
  return out;
}

void CudaBackend::minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values,
                             Tensor& values, Tensor& indices) {
  const char* name = is_max ? (want_values ? "max" : "argmax") : (want_values ? "min" : "argmin");
  require_f32_f64_bf16(x, name);
  if (dim < 0 || dim >= x.dim())
    throw std::invalid_argument(std::string(name) + ": dim " + std::to_string(dim) + " is out of range for a " +
                                std::to_string(x.dim()) + "-d tensor");
  if (x.shape()[size_t(dim)] == 0)
    throw std::invalid_argument(std::string(name) + ": cannot reduce over dim " + std::to_string(dim) +
                                " of size 0 (shape " + shape_str(x.shape()) + "); there is no identity");
  Shape out_shape = x.shape();
  if (keepdim) out_shape[size_t(dim)] = 1;
  else out_shape.erase(out_shape.begin() + dim);
  indices = empty(out_shape, DType::i64, x.device());
  values = want_values ? empty(out_shape, x.dtype(), x.device()) : Tensor();
  if (indices.numel() == 0) return;
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_minmax_dim(x.dtype(), x.device_data(), x.shape(), x.strides(), dim, is_max,
                    want_values ? values.device_data() : nullptr, static_cast<int64_t*>(indices.device_data()),
                    compute_stream(dev));
}

Tensor CudaBackend::minmax_dim_backward(const Tensor& g, const Tensor& indices, const std::vector<int64_t>& in_shape,
                                        int64_t dim) {
  require_same_device(g, indices, "max/min backward", "the saved indices");
  if (dim < 0 || dim >= int64_t(in_shape.size()))
    throw std::invalid_argument("max/min backward: dim " + std::to_string(dim) + " is out of range for shape " +
                                shape_str(in_shape));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= in_shape[size_t(d)];
  for (size_t d = size_t(dim) + 1; d < in_shape.size(); ++d) inner *= in_shape[d];
  const int64_t len = in_shape[size_t(dim)];
  if (g.numel() != outer * inner || indices.numel() != outer * inner || indices.dtype() != DType::i64)
    throw std::invalid_argument("max/min backward: gradient " + shape_str(g.shape()) + " and indices " +
                                shape_str(indices.shape()) + " do not match the input shape " + shape_str(in_shape) +
                                " reduced over dim " + std::to_string(dim));
  const Tensor gc = g.contiguous(), ic = indices.contiguous();
  Tensor grad = zeros(in_shape, g.dtype(), g.device());
  if (gc.numel() == 0) return grad;
  const int dev = g.device().index;
  DeviceGuard guard(dev);
  launch_minmax_scatter(g.itemsize(), grad.device_data(), gc.device_data(),
                        static_cast<const int64_t*>(ic.device_data()), outer, len, inner, compute_stream(dev));
  return grad;
}

Tensor CudaBackend::dropout_apply(const Tensor& x, uint64_t seed, uint64_t stream, uint64_t offset, double keep,
                                  int64_t group) {
  const char* name = group == 1 ? "dropout" : "drop_path";
  require_f32_f64_bf16(x, name);
  if (group < 1) throw std::invalid_argument(std::string(name) + ": group must be >= 1, got " + std::to_string(group));
  const Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_dropout(x.dtype(), y.device_data(), xc.device_data(), y.numel(),
                 DropoutSpec{seed, stream, offset, keep, group},
                 compute_stream(dev));
  return y;
}

}  // namespace rv::cuda
