// backend_rope.cpp: the CUDA backend's rotary position embedding: the rotation of x (or of q and k
// together) by the angles and by their negation, the gradient w.r.t. the angles, and the angle
// table rope_angles with its backward. The kernels are in cuda/kernels/rope.cu; the CPU reference
// and the autograd wiring are in engine/ops/rope.cpp.
//
// Each method checks its arguments (the bench calls them directly), makes the device current,
// allocates its outputs and scratch, and queues the kernels on the device's compute stream.
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/rope.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// x and gradients: f32 or bf16 storage (the math is f32 either way).
void require_rope_storage(const Tensor& t, const char* op, const char* arg) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::bf16)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (`" + arg + "`; f32 and bf16 are)");
}

void require_f32(const Tensor& t, const char* op, const char* arg) {
  if (t.dtype() != DType::f32)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                             t.device().str() + " yet (`" + arg + "`; f32 is)");
}

void require_same_device(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": `" + an + "` is on " + a.device().str() + " but `" + bn +
                                "` is on " + b.device().str() + "; move one with .to(device)");
}

void require_same(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  require_same_device(a, b, op, an, bn);
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": expected `" + bn + "` to have the shape and dtype of `" + an +
                                "` " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + ", got " +
                                shape_str(b.shape()) + " " + dtype_name(b.dtype()));
}

// Checks x (B, NH, N, HD), skip and angles (NH or 1, N - skip, HD/2) f32 on x's device.
RopeDims rope_dims(const Tensor& x, const Tensor& angles, int64_t skip, const char* op) {
  require_rope_storage(x, op, "x");
  require_same_device(x, angles, op, "x", "angles");
  require_f32(angles, op, "angles");
  if (x.dim() != 4 || x.size(3) % 2 != 0)
    throw std::invalid_argument(std::string(op) + ": expected `x` of shape (B, NH, N, HD) with HD even, got " +
                                shape_str(x.shape()));
  RopeDims d;
  d.B = x.size(0), d.NH = x.size(1), d.N = x.size(2), d.HD = x.size(3), d.skip = skip;
  if (skip < 0 || skip > d.N)
    throw std::invalid_argument(std::string(op) + ": expected 0 <= skip_tokens <= N = " + std::to_string(d.N) +
                                ", got " + std::to_string(skip));
  if (angles.dim() != 3 || (angles.size(0) != d.NH && angles.size(0) != 1) || angles.size(1) != d.N - skip ||
      angles.size(2) != d.HD / 2)
    throw std::invalid_argument(std::string(op) + ": expected `angles` of shape (" + std::to_string(d.NH) +
                                " or 1, " + std::to_string(d.N - skip) + ", " + std::to_string(d.HD / 2) +
                                ") for x " + shape_str(x.shape()) + " and skip_tokens " + std::to_string(skip) +
                                ", got " + shape_str(angles.shape()));
  d.shared_heads = angles.size(0) == 1 && d.NH != 1;
  return d;
}

// x detached, with its channel dim contiguous (copied on the device when it is not).
Tensor channels_contiguous(const Tensor& x) {
  Tensor t = x.detach();
  return t.size(3) <= 1 || t.stride(3) == 1 ? t : t.contiguous();
}

RopeView view_of(const Tensor& x) { return RopeView{x.device_data(), x.stride(0), x.stride(1), x.stride(2)}; }

// The (cos, sin) table of the angles, (NHa, Nr, P, 2) f32 on their device.
Tensor cos_sin_table(const Tensor& angles, int dev) {
  const Tensor a = angles.detach().contiguous();
  Tensor table = empty({a.size(0), a.size(1), a.size(2), 2}, DType::f32, a.device());
  launch_rope_table(static_cast<const float*>(a.device_data()), a.numel(), static_cast<float*>(table.device_data()),
                    compute_stream(dev));
  return table;
}

}  // namespace

Tensor CudaBackend::rope_rotate(const Tensor& x_in, const Tensor& angles, int64_t skip_tokens, bool inverse) {
  const RopeDims d = rope_dims(x_in, angles, skip_tokens, "rope_apply");
  const int dev = x_in.device().index;
  DeviceGuard guard(dev);
  const Tensor x = channels_contiguous(x_in);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const Tensor table = cos_sin_table(angles, dev);
  const RopeView in = view_of(x);
  void* const dst = out.device_data();
  launch_rope_rotate(x.dtype(), &in, &dst, 1, d, static_cast<const float*>(table.device_data()), inverse,
                     compute_stream(dev));
  return out;
}

void CudaBackend::rope_rotate_qk(const Tensor& q_in, const Tensor& k_in, const Tensor& angles, int64_t skip_tokens,
                                 bool inverse, Tensor& q_out, Tensor& k_out) {
  const RopeDims d = rope_dims(q_in, angles, skip_tokens, "rope_apply");
  require_same(q_in, k_in, "rope_apply", "q", "k");
  const int dev = q_in.device().index;
  DeviceGuard guard(dev);
  const Tensor q = channels_contiguous(q_in), k = channels_contiguous(k_in);
  q_out = empty(q.shape(), q.dtype(), q.device());
  k_out = empty(k.shape(), k.dtype(), k.device());
  if (q_out.numel() == 0) return;
  const Tensor table = cos_sin_table(angles, dev);
  const RopeView in[2] = {view_of(q), view_of(k)};
  void* const dst[2] = {q_out.device_data(), k_out.device_data()};
  launch_rope_rotate(q.dtype(), in, dst, 2, d, static_cast<const float*>(table.device_data()), inverse,
                     compute_stream(dev));
}

Tensor CudaBackend::rope_angles_grad(const Tensor& g_in, const Tensor& x_in, const Tensor& angles,
                                     int64_t skip_tokens) {
  const char* op = "rope_apply backward";
  const RopeDims d = rope_dims(x_in, angles, skip_tokens, op);
  require_same(x_in, g_in, op, "x", "grad");
  const int dev = x_in.device().index;
  DeviceGuard guard(dev);
  Tensor dangles = empty(angles.shape(), DType::f32, angles.device());
  if (dangles.numel() == 0) return dangles;
  const Tensor g = channels_contiguous(g_in), x = channels_contiguous(x_in);
  const Tensor table = cos_sin_table(angles, dev);
  Tensor partials = empty({rope_angle_grad_chunks(d, 1) * dangles.numel()}, DType::f64, x.device());
  const RopeView gv = view_of(g), xv = view_of(x);
  launch_rope_angle_grad(x.dtype(), &gv, &xv, 1, d, static_cast<const float*>(table.device_data()),
                         static_cast<double*>(partials.device_data()), static_cast<float*>(dangles.device_data()),
                         compute_stream(dev));
  return dangles;
}

Tensor CudaBackend::rope_angles_grad_qk(const Tensor& gq_in, const Tensor& q_in, const Tensor& gk_in,
                                        const Tensor& k_in, const Tensor& angles, int64_t skip_tokens) {
  const char* op = "rope_apply backward";
  const RopeDims d = rope_dims(q_in, angles, skip_tokens, op);
  require_same(q_in, k_in, op, "q", "k");
  require_same(q_in, gq_in, op, "q", "grad of q");
  require_same(q_in, gk_in, op, "q", "grad of k");
  const int dev = q_in.device().index;
  DeviceGuard guard(dev);
  Tensor dangles = empty(angles.shape(), DType::f32, angles.device());
  if (dangles.numel() == 0) return dangles;
  const Tensor gq = channels_contiguous(gq_in), q = channels_contiguous(q_in);
  const Tensor gk = channels_contiguous(gk_in), k = channels_contiguous(k_in);
  const Tensor table = cos_sin_table(angles, dev);
  Tensor partials = empty({rope_angle_grad_chunks(d, 2) * dangles.numel()}, DType::f64, q.device());
  const RopeView gv[2] = {view_of(gq), view_of(gk)}, xv[2] = {view_of(q), view_of(k)};
  launch_rope_angle_grad(q.dtype(), gv, xv, 2, d, static_cast<const float*>(table.device_data()),
                         static_cast<double*>(partials.device_data()), static_cast<float*>(dangles.device_data()),
                         compute_stream(dev));
  return dangles;
}

Tensor CudaBackend::rope_angles(const Tensor& freqs_in, const Tensor& pos_in) {
  const char* op = "rope_angles";
  require_same_device(freqs_in, pos_in, op, "freqs", "pos");
  require_f32(freqs_in, op, "freqs");
  require_f32(pos_in, op, "pos");
  if (freqs_in.dim() != 3 || pos_in.dim() != 2 || pos_in.size(1) != freqs_in.size(0))
    throw std::invalid_argument("rope_angles: expected `freqs` (A, NH, HD/2) and `pos` (N, A), got " +
                                shape_str(freqs_in.shape()) + " and " + shape_str(pos_in.shape()));
  const int64_t A = freqs_in.size(0), NH = freqs_in.size(1), P = freqs_in.size(2), N = pos_in.size(0);
  const int dev = freqs_in.device().index;
  DeviceGuard guard(dev);
  Tensor out = empty({NH, N, P}, DType::f32, freqs_in.device());
  if (out.numel() == 0) return out;
  const Tensor f = freqs_in.detach().contiguous(), p = pos_in.detach().contiguous();
  launch_rope_angles(static_cast<const float*>(f.device_data()), static_cast<const float*>(p.device_data()),
                     static_cast<float*>(out.device_data()), A, NH, N, P, compute_stream(dev));
  return out;
}

void CudaBackend::rope_angles_backward(const Tensor& g_in, const Tensor& freqs_in, const Tensor& pos_in,
                                       Tensor* dfreqs, Tensor* dpos) {
  const char* op = "rope_angles backward";
  require_same_device(freqs_in, pos_in, op, "freqs", "pos");
  require_same_device(freqs_in, g_in, op, "freqs", "grad");
  require_f32(g_in, op, "grad");
  require_f32(freqs_in, op, "freqs");
  require_f32(pos_in, op, "pos");
  if (freqs_in.dim() != 3 || pos_in.dim() != 2 || pos_in.size(1) != freqs_in.size(0))
    throw std::invalid_argument("rope_angles backward: expected `freqs` (A, NH, HD/2) and `pos` (N, A), got " +
                                shape_str(freqs_in.shape()) + " and " + shape_str(pos_in.shape()));
  const int64_t A = freqs_in.size(0), NH = freqs_in.size(1), P = freqs_in.size(2), N = pos_in.size(0);
  if (g_in.shape() != Shape{NH, N, P})
    throw std::invalid_argument("rope_angles backward: expected `grad` of shape " + shape_str(Shape{NH, N, P}) +
                                ", got " + shape_str(g_in.shape()));
  const int dev = freqs_in.device().index;
  DeviceGuard guard(dev);
  if (dfreqs) *dfreqs = empty({A, NH, P}, DType::f32, freqs_in.device());
  if (dpos) *dpos = empty({N, A}, DType::f32, freqs_in.device());
  const Tensor g = g_in.detach().contiguous();
  const Tensor f = freqs_in.detach().contiguous(), p = pos_in.detach().contiguous();
  launch_rope_angles_backward(static_cast<const float*>(g.device_data()), static_cast<const float*>(f.device_data()),
                              static_cast<const float*>(p.device_data()),
                              dfreqs ? static_cast<float*>(dfreqs->device_data()) : nullptr,
                              dpos ? static_cast<float*>(dpos->device_data()) : nullptr, A, NH, N, P,
                              compute_stream(dev));
}

}  // namespace rv::cuda
