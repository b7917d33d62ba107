// grad_sync.cpp: parameter broadcast and bucketed gradient averaging (see grad_sync.h).
#include "train/distributed/grad_sync.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"

namespace rv::train::dist {

void broadcast_state(const nn::StateDict& state, Communicator& comm, int root) {
  if (comm.world_size() == 1) return;
  for (const auto& [name, t] : state) {
    if (!t.is_contiguous())
      throw std::invalid_argument("broadcast_state: '" + name + "' is not contiguous; expected a contiguous tensor");
    const int64_t bytes = t.numel() * int64_t(t.itemsize());
    if (t.device().is_cpu()) {
      comm.broadcast(t.raw_data(), bytes, root);
    } else if (comm.device_collectives()) {
      comm.broadcast(t.device_data(), bytes, root);
    } else {  // a host communicator: through a host copy (slow, once at start)
      Tensor host = t.cpu();
      comm.broadcast(host.raw_data(), bytes, root);
      autograd::NoGradGuard no_grad;  // parameters require grad; this is not a step of the graph
      Tensor dst = t;
      dst.copy_(host);
    }
  }
}

GradientSync::GradientSync(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  if (bucket_bytes < 4) throw std::invalid_argument("GradientSync: bucket_bytes must be at least 4");
  if (!params_.empty()) device_ = params_[0].device();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].dtype() != DType::f32)
      throw std::invalid_argument("GradientSync: parameter " + std::to_string(i) + " has dtype " +
                                  dtype_name(params_[i].dtype()) + "; expected float32 (master weights)");
    if (params_[i].device() != device_)
      throw std::invalid_argument("GradientSync: parameter " + std::to_string(i) + " is on " +
                                  params_[i].device().str() + " but parameter 0 is on " + device_.str() +
                                  "; expected every parameter on one device");
  }
  // Reverse order: the last parameters get their gradients first in the backward.
  const int64_t cap = bucket_bytes / 4;
  for (size_t k = params_.size(); k-- > 0;) {
    const int64_t n = params_[k].numel();
    if (buckets_.empty() || (buckets_.back().numel > 0 && buckets_.back().numel + n > cap)) buckets_.emplace_back();
    buckets_.back().members.push_back(k);
    buckets_.back().numel += n;
  }
  int64_t largest = 0;
  for (const auto& b : buckets_) largest = std::max(largest, b.numel);
  has_grad_.resize(params_.size());
  if (comm_.world_size() == 1) return;  // average() does nothing: no buffers
  if (device_.is_cpu())
    staging_.resize(size_t(largest));
  else
    device_staging_ = empty({largest}, DType::f32, device_);
}

void GradientSync::average() {
  const int world = comm_.world_size();
  if (world == 1) return;
  for (size_t i = 0; i < params_.size(); ++i) has_grad_[i] = params_[i].grad().defined() ? 1 : 0;
  comm_.all_reduce_sum(has_grad_.data(), int64_t(has_grad_.size()), DType::i64);
  const float inv_world = 1.0f / float(world);
  if (!device_.is_cpu()) {
    for (const Bucket& b : buckets_) average_on_device(b, inv_world);
    return;
  }
  for (const Bucket& b : buckets_) {
    // Pack: each gradient's elements in row-major order, zeros for a missing one.
    int64_t at = 0;
    for (size_t k : b.members) {
      const Tensor g = params_[k].grad();
      const int64_t n = params_[k].numel();
      if (g.defined()) {
        const Tensor c = g.is_contiguous() && g.dtype() == DType::f32 ? g : g.contiguous().to(DType::f32);
        std::memcpy(staging_.data() + at, c.data<float>(), size_t(n) * 4);
      } else {
        std::fill_n(staging_.data() + at, n, 0.0f);
      }
      at += n;
    }
    comm_.all_reduce_sum(staging_.data(), b.numel, DType::f32);
    for (int64_t i = 0; i < b.numel; ++i) staging_[size_t(i)] *= inv_world;  // 1/W: exact for powers of two
    // Unpack into the gradients (new ones for parameters that had none here but had elsewhere).
    at = 0;
    for (size_t k : b.members) {
      const int64_t n = params_[k].numel();
      if (has_grad_[k] > 0) {
        Tensor g = params_[k].grad();
        if (!g.defined() || !g.is_contiguous() || g.dtype() != DType::f32) {
          g = empty(params_[k].shape(), DType::f32);
          std::memcpy(g.data<float>(), staging_.data() + at, size_t(n) * 4);
          params_[k].set_grad(g);
        } else {
          std::memcpy(g.data<float>(), staging_.data() + at, size_t(n) * 4);
        }
      }
      at += n;
    }
  }
}

void GradientSync::average_on_device(const Bucket& b, float inv_world) {
  autograd::NoGradGuard no_grad;
  Tensor flat = device_staging_.narrow(0, 0, b.numel);  // (numel,) contiguous, on device_
  // Pack: each gradient into its slice (a device copy, converting dtype or strides when needed),
  // zeros for a missing one.
  int64_t at = 0;
  for (size_t k : b.members) {
    const Tensor g = params_[k].grad();
    const int64_t n = params_[k].numel();
    Tensor slot = flat.narrow(0, at, n);
    if (g.defined())
      slot.view(params_[k].shape()).copy_(g);
    else if (n > 0)
      backend::get(device_).memset(slot.device_data(), 0, size_t(n) * 4, device_.index);
    at += n;
  }
  if (comm_.device_collectives()) {
    comm_.all_reduce_sum(flat.device_data(), b.numel, DType::f32);  // queued on the comm stream, fenced
  } else {
    // Host communicator: down, reduce, up. Works everywhere; two transfers and a host wait per bucket.
    Tensor host = flat.cpu();
    comm_.all_reduce_sum(host.raw_data(), b.numel, DType::f32);
    flat.copy_(host);
  }
  const Tensor avg = mul(flat, double(inv_world));  // 1/W in float, as the CPU path: exact for powers of two
  // Unpack into the gradients (new ones for parameters that had none here but had elsewhere).
  at = 0;
  for (size_t k : b.members) {
    const int64_t n = params_[k].numel();
    if (has_grad_[k] > 0) {
      const Tensor slot = avg.narrow(0, at, n).view(params_[k].shape());
      Tensor g = params_[k].grad();
      if (g.defined() && g.dtype() == DType::f32 && g.device() == device_)
        g.copy_(slot);
      else
        params_[k].set_grad(slot.clone());  // its own memory, not a view of this bucket
    }
    at += n;
  }
}

}  // namespace rv::train::dist
