// backend_basic_ops.cpp: the CUDA backend's first ops: strided copy (contiguous(), copy_()),
// fill, add/sub/mul/div with broadcasting, and the sum of all elements; plus the argument
// helpers that every backend_<family>.cpp shares (declared in cuda_backend.h).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/elementwise_binary.h"
#include "cuda/kernels/reduce_sum.h"
#include "cuda/kernels/strided_copy.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

// Element strides of `t` read as `shape` (t broadcast to it: stride 0 in the broadcast dims).
Shape broadcast_strides_to(const Tensor& t, const Shape& shape) {
  Shape st(shape.size(), 0);
  const size_t lead = shape.size() - t.shape().size();
  for (size_t d = 0; d < t.shape().size(); ++d) st[lead + d] = t.shape()[d] == 1 ? 0 : t.strides()[d];
  return st;
}

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (x != y && x != 1 && y != 1)
      throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                                  " do not broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

void require_float32_or_64(const Tensor& t, const char* op) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (f32 and f64 are)");
}


void CudaBackend::copy_strided(const Tensor& dst, const Tensor& src) {
  const int dev = dst.device().index;
  DeviceGuard g(dev);
  launch_strided_copy(dst.device_data(), dst.strides(), src.device_data(), broadcast_strides_to(src, dst.shape()),
                      dst.shape(), dst.itemsize(), compute_stream(dev));
}

void CudaBackend::fill(const Tensor& dst, double value) {
  // The value in dst's dtype, rounded on the host exactly as the CPU fill rounds it.
  const Tensor v = scalar_tensor(value, dst.dtype());
  uint64_t bits = 0;
  std::memcpy(&bits, v.raw_data(), v.itemsize());
  const int dev = dst.device().index;
  DeviceGuard g(dev);
  launch_strided_fill(dst.device_data(), dst.strides(), dst.shape(), dst.itemsize(), bits, compute_stream(dev));
}

Tensor CudaBackend::binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = backend::binary_op_name(op);
  require_float32_or_64(a, name);
  const Shape shape = broadcast_shape(a.shape(), b.shape(), name);
  Tensor z = empty(shape, a.dtype(), a.device());
  if (z.numel() == 0) return z;
  const int dev = a.device().index;
  DeviceGuard g(dev);
  launch_binary(op, a.dtype(), z.device_data(), a.device_data(), broadcast_strides_to(a, shape), b.device_data(),
                broadcast_strides_to(b, shape), shape, compute_stream(dev));
  return z;
}

Tensor CudaBackend::sum_all(const Tensor& x) {
  require_float32_or_64(x, "sum");
  const Tensor xc = x.contiguous();
  const int64_t n = xc.numel();
  Tensor out = empty({}, x.dtype(), x.device());
  Tensor partials = empty({sum_all_partials(n)}, DType::f64, x.device());
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_sum_all(x.dtype(), xc.device_data(), n, out.device_data(), static_cast<double*>(partials.device_data()),
                 compute_stream(dev));
  return out;
}

}  // namespace rv::cuda
