// backend_take.cpp: the CUDA backend's flat gather (`take`) and bucketed scatter-add
// (`scatter_add_flat`), kernels in cuda/kernels/take.cu. The engine hands over host int64
// offsets (engine/ops/index_device.cpp); the scatter's buckets are built here on the host
// (backend::bucket_by_target) and uploaded with them.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/take.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

void check_host_offsets(const Tensor& t, const char* what, const char* op) {
  if (!t.device().is_cpu() || t.dtype() != DType::i64 || t.dim() != 1 || !t.is_contiguous())
    throw std::invalid_argument(std::string(op) + ": the backend takes " + what +
                                " as a contiguous 1-D int64 CPU tensor, got " + dtype_name(t.dtype()) + " " +
                                shape_str(t.shape()) + " on " + t.device().str());
}

void check_range(const Tensor& t, int64_t bound, const char* what, const char* op) {
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (p[i] < 0 || p[i] >= bound)
      throw std::out_of_range(std::string(op) + ": " + what + " offset " + std::to_string(p[i]) + " at " +
                              std::to_string(i) + " is outside [0, " + std::to_string(bound) + ")");
}

// A host int64 table on the device (at least one element, so an empty table still has memory).
Tensor upload(const std::vector<int64_t>& v, Device dev) {
  return from_vector(v.empty() ? std::vector<int64_t>{0} : v, {int64_t(std::max<size_t>(v.size(), 1))}).to(dev);
}

}  // namespace

Tensor CudaBackend::take(const Tensor& src, const Tensor& offsets) {
  check_host_offsets(offsets, "the offsets", "gather");
  check_range(offsets, src.numel(), "source", "gather");
  Tensor out = empty({offsets.numel()}, src.dtype(), src.device());
  if (out.numel() == 0) return out;
  const Tensor sc = src.contiguous();
  const Tensor d_offsets = offsets.to(src.device());
  const int dev = src.device().index;
  DeviceGuard guard(dev);
  launch_take(int(src.itemsize()), out.device_data(), sc.device_data(),
              static_cast<const int64_t*>(d_offsets.device_data()), out.numel(), compute_stream(dev));
  return out;
}

Tensor CudaBackend::scatter_add_flat(const Tensor& x, const Tensor& src, const Tensor& targets,
                                     const Tensor& sources) {
  require_float32_or_64(x, "scatter_add");
  if (src.dtype() != x.dtype())
    throw std::invalid_argument(std::string("scatter_add: src dtype ") + dtype_name(src.dtype()) +
                                " differs from x dtype " + dtype_name(x.dtype()));
  check_host_offsets(targets, "the targets", "scatter_add");
  check_host_offsets(sources, "the sources", "scatter_add");
  if (targets.numel() != sources.numel())
    throw std::invalid_argument("scatter_add: " + std::to_string(targets.numel()) + " targets but " +
                                std::to_string(sources.numel()) + " sources");
  check_range(targets, x.numel(), "target", "scatter_add");
  check_range(sources, src.numel(), "source", "scatter_add");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  std::vector<int64_t> off, order;
  backend::bucket_by_target(targets.data<int64_t>(), sources.data<int64_t>(), targets.numel(), x.numel(), off, order);
  const Tensor d_off = upload(off, x.device()), d_order = upload(order, x.device());
  const Tensor xc = x.contiguous(), sc = src.contiguous();
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  launch_scatter_add_buckets(x.dtype(), out.device_data(), xc.device_data(), sc.device_data(),
                             static_cast<const int64_t*>(d_off.device_data()),
                             static_cast<const int64_t*>(d_order.device_data()), out.numel(), compute_stream(dev));
  return out;
}

}  // namespace rv::cuda
