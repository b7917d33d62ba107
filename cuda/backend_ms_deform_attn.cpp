// backend_ms_deform_attn.cpp: the CUDA backend's multi-scale deformable attention, forward and
// backward. The kernels are in cuda/kernels/ms_deform_attn.cu; the CPU reference, the argument
// checks of the public op and the autograd wiring are in engine/ops/ms_deform_attn.cpp.
//
// Each method checks its arguments (the bench may call them directly), makes the device current,
// uploads the level table (H, W, start) per level, makes the inputs contiguous on the device, and
// queues the kernel on the device's compute stream.
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/ms_deform_attn.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// Checks the three float inputs (one dtype, f32 or f64, value's device, consistent shapes) and the
// level table, and returns the sizes (levels still null).
MsdaDims msda_dims(const Tensor& value, const std::vector<int64_t>& level_hw, const std::vector<int64_t>& level_start,
                   const Tensor& loc, const Tensor& attn, const char* op) {
  require_float32_or_64(value, op);
  for (const Tensor* t : {&loc, &attn}) {
    if (t->device() != value.device())
      throw std::invalid_argument(std::string(op) + ": every input must be on " + value.device().str() +
                                  " (where `value` is), got one on " + t->device().str());
    if (t->dtype() != value.dtype())
      throw std::invalid_argument(std::string(op) + ": expected `sampling_locations` and `attention_weights` in "
                                  "`value`'s dtype " + dtype_name(value.dtype()) + ", got " + dtype_name(t->dtype()));
  }
  if (value.dim() != 4 || loc.dim() != 6 || attn.dim() != 5)
    throw std::invalid_argument(std::string(op) + ": expected value (B, S, NH, HD), sampling_locations (B, Q, NH, L, P, 2) "
                                "and attention_weights (B, Q, NH, L, P), got " + shape_str(value.shape()) + ", " +
                                shape_str(loc.shape()) + ", " + shape_str(attn.shape()));
  MsdaDims d;
  d.B = value.size(0), d.S = value.size(1), d.NH = value.size(2), d.HD = value.size(3);
  d.Q = loc.size(1), d.L = loc.size(3), d.P = loc.size(4);
  if (loc.shape() != Shape{d.B, d.Q, d.NH, d.L, d.P, 2} || attn.shape() != Shape{d.B, d.Q, d.NH, d.L, d.P})
    throw std::invalid_argument(std::string(op) + ": sampling_locations " + shape_str(loc.shape()) +
                                " and attention_weights " + shape_str(attn.shape()) + " do not match value " +
                                shape_str(value.shape()));
  if (level_hw.size() != size_t(2 * d.L) || level_start.size() != size_t(d.L))
    throw std::invalid_argument(std::string(op) + ": expected " + std::to_string(d.L) + " levels (H, W) and starts, got " +
                                std::to_string(level_hw.size()) + " and " + std::to_string(level_start.size()) +
                                " values");
  for (int64_t l = 0; l < d.L; ++l) {
    const int64_t H = level_hw[size_t(2 * l)], W = level_hw[size_t(2 * l + 1)], s = level_start[size_t(l)];
    if (H < 0 || W < 0 || s < 0 || s + H * W > d.S)
      throw std::invalid_argument(std::string(op) + ": level " + std::to_string(l) + " (" + std::to_string(H) + ", " +
                                  std::to_string(W) + ") starting at " + std::to_string(s) +
                                  " does not fit in S = " + std::to_string(d.S));
  }
  return d;
}

// (L, 3) int64 (H, W, start) on `dev` (at least one element, so that L = 0 still has an address).
// The caller keeps the tensor alive until the kernel is queued: its memory goes back to the
// stream-ordered cache, so later reuse is ordered after the kernel.
Tensor level_table(const std::vector<int64_t>& hw, const std::vector<int64_t>& start, Device dev) {
  std::vector<int64_t> t;
  for (size_t l = 0; l < start.size(); ++l) t.insert(t.end(), {hw[2 * l], hw[2 * l + 1], start[l]});
  if (t.empty()) t.push_back(0);
  return from_vector(t, {int64_t(t.size())}).to(dev);
}

}  // namespace

Tensor CudaBackend::ms_deform_attn(const Tensor& value_in, const std::vector<int64_t>& level_hw,
                                   const std::vector<int64_t>& level_start, const Tensor& loc_in,
                                   const Tensor& attn_in) {
  MsdaDims d = msda_dims(value_in, level_hw, level_start, loc_in, attn_in, "ms_deform_attn");
  const int dev = value_in.device().index;
  DeviceGuard guard(dev);
  Tensor out = empty({d.B, d.Q, d.NH * d.HD}, value_in.dtype(), value_in.device());
  if (out.numel() == 0) return out;
  const Tensor value = value_in.detach().contiguous(), loc = loc_in.detach().contiguous(),
               attn = attn_in.detach().contiguous();
  const Tensor levels = level_table(level_hw, level_start, value.device());
  d.levels = static_cast<const int64_t*>(levels.device_data());
  launch_ms_deform_attn_forward(value.dtype(), value.device_data(), loc.device_data(), attn.device_data(),
                                out.device_data(), d, compute_stream(dev));
  return out;
}

void CudaBackend::ms_deform_attn_backward(const Tensor& g_in, const Tensor& value_in,
                                          const std::vector<int64_t>& level_hw,
                                          const std::vector<int64_t>& level_start, const Tensor& loc_in,
                                          const Tensor& attn_in, Tensor* dvalue, Tensor* dlocations,
                                          Tensor* dweights) {
  const char* op = "ms_deform_attn backward";
  MsdaDims d = msda_dims(value_in, level_hw, level_start, loc_in, attn_in, op);
  if (g_in.device() != value_in.device() || g_in.dtype() != value_in.dtype() ||
      g_in.shape() != Shape{d.B, d.Q, d.NH * d.HD})
    throw std::invalid_argument(std::string(op) + ": expected `grad` " + shape_str({d.B, d.Q, d.NH * d.HD}) + " " +
                                dtype_name(value_in.dtype()) + " on " + value_in.device().str() + ", got " +
                                shape_str(g_in.shape()) + " " + dtype_name(g_in.dtype()) + " on " +
                                g_in.device().str());
  const int dev = value_in.device().index;
  DeviceGuard guard(dev);
  // The value gradient is accumulated with atomics: it starts at zero.
  if (dvalue) *dvalue = zeros(value_in.shape(), value_in.dtype(), value_in.device());
  if (dlocations) *dlocations = empty(loc_in.shape(), loc_in.dtype(), loc_in.device());
  if (dweights) *dweights = empty(attn_in.shape(), attn_in.dtype(), attn_in.device());
  if (attn_in.numel() == 0) return;  // no points: the gradients are empty or (value) zero
  const Tensor g = g_in.detach().contiguous(), value = value_in.detach().contiguous(),
               loc = loc_in.detach().contiguous(), attn = attn_in.detach().contiguous();
  const Tensor levels = level_table(level_hw, level_start, value.device());
  d.levels = static_cast<const int64_t*>(levels.device_data());
  launch_ms_deform_attn_backward(value.dtype(), g.device_data(), value.device_data(), loc.device_data(),
                                 attn.device_data(), dvalue ? dvalue->device_data() : nullptr,
                                 dlocations ? dlocations->device_data() : nullptr,
                                 dweights ? dweights->device_data() : nullptr, d, compute_stream(dev));
}

}  // namespace rv::cuda
