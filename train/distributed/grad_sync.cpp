// grad_sync.cpp: parameter broadcast and bucketed gradient averaging (see grad_sync.h).
#include "train/distributed/grad_sync.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace rv::train::dist {

void broadcast_state(const nn::StateDict& state, Communicator& comm, int root) {
  if (comm.world_size() == 1) return;
  for (const auto& [name, t] : state) {
    if (!t.is_contiguous())
      throw std::invalid_argument("broadcast_state: '" + name + "' is not contiguous; expected a contiguous tensor");
    comm.broadcast(t.raw_data(), t.numel() * int64_t(t.itemsize()), root);
  }
}

GradientSync::GradientSync(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  if (bucket_bytes < 4) throw std::invalid_argument("GradientSync: bucket_bytes must be at least 4");
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].dtype() != DType::f32)
      throw std::invalid_argument("GradientSync: parameter " + std::to_string(i) + " has dtype " +
                                  dtype_name(params_[i].dtype()) + "; expected float32 (master weights)");
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
  staging_.resize(size_t(largest));
  has_grad_.resize(params_.size());
}

void GradientSync::average() {
  const int world = comm_.world_size();
  if (world == 1) return;
  for (size_t i = 0; i < params_.size(); ++i) has_grad_[i] = params_[i].grad().defined() ? 1 : 0;
  comm_.all_reduce_sum(has_grad_.data(), int64_t(has_grad_.size()), DType::i64);
  const float inv_world = 1.0f / float(world);
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

}  // namespace rv::train::dist
