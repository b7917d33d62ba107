// grad_sync.cpp: parameter broadcast and bucketed gradient averaging, overlapped with the backward
// (see grad_sync.h).
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

GradientSync::GradientSync(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes, bool overlap)
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
  bucket_of_.resize(params_.size());
  for (size_t k = params_.size(); k-- > 0;) {
    const int64_t n = params_[k].numel();
    if (buckets_.empty() || (buckets_.back().numel > 0 && buckets_.back().numel + n > cap)) {
      const int64_t offset = buckets_.empty() ? 0 : buckets_.back().offset + buckets_.back().numel;
      buckets_.emplace_back();
      buckets_.back().offset = offset;
    }
    buckets_.back().members.push_back(k);
    buckets_.back().numel += n;
    bucket_of_[k] = buckets_.size() - 1;
  }
  const int64_t total = buckets_.empty() ? 0 : buckets_.back().offset + buckets_.back().numel;
  has_grad_.resize(params_.size());
  final_.assign(params_.size(), 0);
  reset_step();
  if (comm_.world_size() == 1) return;  // finish() does nothing: no buffers, no hooks, no thread
  // Every bucket has its buffer: with overlap several are in flight at once (DDP does the same).
  if (!device_.is_cpu()) device_flat_ = empty({total}, DType::f32, device_);
  if (device_.is_cpu() || !comm_.device_collectives()) host_flat_.resize(size_t(total));
  use_thread_ = overlap && !comm_.device_collectives();
  // A host communicator that must stay on this thread (an MPI without MPI_THREAD_SERIALIZED)
  // cannot have a communication thread: then nothing overlaps.
  overlap_ = overlap && (!use_thread_ || comm_.any_thread());
  if (!overlap_) {
    use_thread_ = false;
    return;
  }
  hooks_.reserve(params_.size());
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].requires_grad())  // a frozen parameter never gets a gradient: finish() packs zeros
      hooks_.push_back(autograd::register_post_accumulate_grad_hook(
          params_[k], [this, k](const Tensor&) { on_final_gradient(k); }));
  if (use_thread_) thread_ = std::thread([this] { comm_loop(); });
}

GradientSync::~GradientSync() {
  hooks_.clear();  // no hook may reach a destroyed object
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();  // after the buckets already queued (their peers wait for them)
}

void GradientSync::reset_step() {
  armed_ = false;
  next_launch_ = 0;
  std::fill(final_.begin(), final_.end(), 0);
  for (Bucket& b : buckets_) b.pending = b.members.size();
}

void GradientSync::prepare_backward(bool last) {
  if (!overlap_) return;
  if (next_launch_ > 0)
    throw std::logic_error("GradientSync::prepare_backward: buckets of this step are already launched; call "
                           "finish() before the next step's backward");
  armed_ = last;
}

void GradientSync::on_final_gradient(size_t k) {
  if (!armed_) return;  // an accumulation micro-step, or a backward outside training
  if (final_[k])
    throw std::logic_error("GradientSync: parameter " + std::to_string(k) + " (shape " +
                           shape_str(params_[k].shape()) + ") received a second final gradient in one step, after "
                           "its bucket was sent: a second backward() after prepare_backward(true)? Call finish() "
                           "first, or prepare_backward(false) for accumulation micro-steps");
  final_[k] = 1;
  if (--buckets_[bucket_of_[k]].pending == 0) launch_ready();
}

void GradientSync::launch_ready() {
  // Index order on every rank, whatever order the buckets completed in.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(next_launch_++);
}

void GradientSync::launch(size_t bi) {
  const Bucket& b = buckets_[bi];
  if (device_.is_cpu())
    pack_host(b);
  else
    pack_device(b);
  if (!device_.is_cpu() && comm_.device_collectives()) {
    // Queued on the communicator's stream after the packing copies; the host goes on. Overlapped,
    // the compute stream goes on too (the rest of the backward), until finish()'s wait_deferred().
    void* data = device_flat_.narrow(0, b.offset, b.numel).device_data();
    if (overlap_)
      comm_.all_reduce_sum_deferred(data, b.numel, DType::f32);
    else
      comm_.all_reduce_sum(data, b.numel, DType::f32);
    return;
  }
  float* data = host_flat_.data() + b.offset;
  if (!use_thread_) {  // not overlapped: reduce it here and now
    comm_.all_reduce_sum(data, b.numel, DType::f32);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_ = bi + 1;  // buckets are queued in index order, so the queue is a count
  }
  cv_.notify_all();
}

void GradientSync::comm_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || reduced_ < queued_; });
    if (reduced_ == queued_) return;  // stop_, nothing left
    const Bucket& b = buckets_[reduced_];
    const bool failed = error_ != nullptr;
    lock.unlock();
    std::exception_ptr err;
    if (!failed) {  // after a failure the ranks disagree already: no further collectives
      try {
        comm_.all_reduce_sum(host_flat_.data() + b.offset, b.numel, DType::f32);
      } catch (...) {
        err = std::current_exception();
      }
    }
    lock.lock();
    if (err && !error_) error_ = err;
    ++reduced_;
    cv_.notify_all();
  }
}

void GradientSync::wait_reduced() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return reduced_ == queued_; });
  queued_ = reduced_ = 0;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void GradientSync::finish() {
  if (comm_.world_size() == 1) return;
  launched_before_finish_ = next_launch_;
  // The buckets the backward did not complete (overlap off, an unused parameter, a rank that
  // skipped its backward): now, in the same index order as every rank.
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  reset_step();
  if (use_thread_) wait_reduced();
  if (overlap_ && !device_.is_cpu() && comm_.device_collectives()) comm_.wait_deferred();  // before unpack reads
  for (size_t i = 0; i < params_.size(); ++i) has_grad_[i] = params_[i].grad().defined() ? 1 : 0;
  comm_.all_reduce_sum(has_grad_.data(), int64_t(has_grad_.size()), DType::i64);
  const float inv_world = 1.0f / float(comm_.world_size());
  for (const Bucket& b : buckets_) unpack(b, inv_world);
}

void GradientSync::pack_host(const Bucket& b) {
  // Each gradient's elements in row-major order, zeros for a missing one.
  float* dst = host_flat_.data() + b.offset;
  for (size_t k : b.members) {
    const Tensor g = params_[k].grad();
    const int64_t n = params_[k].numel();
    if (g.defined()) {
      const Tensor c = g.is_contiguous() && g.dtype() == DType::f32 ? g : g.contiguous().to(DType::f32);
      std::memcpy(dst, c.data<float>(), size_t(n) * 4);
    } else {
      std::fill_n(dst, n, 0.0f);
    }
    dst += n;
  }
}

void GradientSync::pack_device(const Bucket& b) {
  autograd::NoGradGuard no_grad;
  Tensor flat = device_flat_.narrow(0, b.offset, b.numel);  // (numel,) contiguous, on device_
  // Each gradient into its slice (a device copy, converting dtype or strides when needed), zeros
  // for a missing one.
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
  if (!comm_.device_collectives() && b.numel > 0) {
    // Host communicator: down now (a host wait), reduced on the host, up again in unpack().
    const Tensor host = flat.cpu();
    std::memcpy(host_flat_.data() + b.offset, host.data<float>(), size_t(b.numel) * 4);
  }
}

void GradientSync::unpack(const Bucket& b, float inv_world) {
  if (device_.is_cpu()) {
    float* sums = host_flat_.data() + b.offset;
    for (int64_t i = 0; i < b.numel; ++i) sums[i] *= inv_world;  // 1/W: exact for powers of two
    // Into the gradients (new ones for parameters that had none here but had elsewhere).
    for (size_t k : b.members) {
      const int64_t n = params_[k].numel();
      if (has_grad_[k] > 0) {
        Tensor g = params_[k].grad();
        if (!g.defined() || !g.is_contiguous() || g.dtype() != DType::f32) {
          g = empty(params_[k].shape(), DType::f32);
          std::memcpy(g.data<float>(), sums, size_t(n) * 4);
          params_[k].set_grad(g);
        } else {
          std::memcpy(g.data<float>(), sums, size_t(n) * 4);
        }
      }
      sums += n;
    }
    return;
  }
  autograd::NoGradGuard no_grad;
  Tensor flat = device_flat_.narrow(0, b.offset, b.numel);
  if (!comm_.device_collectives() && b.numel > 0) {  // the host sums back up to the device
    Tensor host = empty({b.numel}, DType::f32);
    std::memcpy(host.data<float>(), host_flat_.data() + b.offset, size_t(b.numel) * 4);
    flat.copy_(host);
  }
  const Tensor avg = mul(flat, double(inv_world));  // 1/W in float, as the CPU path: exact for powers of two
  int64_t at = 0;
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
