// watchdog.cpp: the time limit on collectives (see watchdog.h).
#include "train/distributed/watchdog.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace rv::train::dist {

WatchedCommunicator::WatchedCommunicator(std::shared_ptr<Communicator> inner, double timeout_s)
    : inner_(std::move(inner)), timeout_s_(timeout_s), thread_([this] { watch(); }) {}

WatchedCommunicator::~WatchedCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WatchedCommunicator::watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // Wake often enough that a short test timeout is honoured within about a tenth of it.
    const double tick = std::min(1.0, std::max(0.01, timeout_s_ / 10));
    cv_.wait_for(lock, std::chrono::duration<double>(tick));
    if (stop_ || !op_) continue;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (waited < timeout_s_) continue;
    std::fprintf(stderr,
                 "ropevit: dist watchdog: rank %d: %s (%lld bytes) at step %lld did not finish within %g s "
                 "(dist.timeout_s); a peer is stuck or dead. Stopping.\n",
                 inner_->rank(), op_, (long long)bytes_, (long long)step_.load(), timeout_s_);
    std::fflush(stderr);
    _exit(124);  // the training thread is blocked inside the collective: no clean way out
  }
}

template <class F> void WatchedCommunicator::watched(const char* op, int64_t bytes, F&& f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    op_ = op;
    bytes_ = bytes;
    started_ = std::chrono::steady_clock::now();
  }
  try {
    f();
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      op_ = nullptr;
    }
    throw std::runtime_error(std::string(op) + " at step " + std::to_string(step_.load()) + " failed on rank " +
                             std::to_string(inner_->rank()) + ": " + e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  op_ = nullptr;
}

void WatchedCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  watched("all_reduce", count * int64_t(reduce_item_size(dtype, "all_reduce")),
          [&] { inner_->all_reduce_sum(data, count, dtype); });
}
void WatchedCommunicator::all_reduce_sum_deferred(void* data, int64_t count, DType dtype) {
  watched("all_reduce", count * int64_t(reduce_item_size(dtype, "all_reduce")),
          [&] { inner_->all_reduce_sum_deferred(data, count, dtype); });
}
void WatchedCommunicator::broadcast(void* data, int64_t bytes, int root) {
  watched("broadcast", bytes, [&] { inner_->broadcast(data, bytes, root); });
}
void WatchedCommunicator::all_gather(const void* in, int64_t bytes, void* out) {
  watched("all_gather", bytes, [&] { inner_->all_gather(in, bytes, out); });
}
void WatchedCommunicator::reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) {
  watched("reduce_scatter", count_per_rank * int64_t(reduce_item_size(dtype, "reduce_scatter")),
          [&] { inner_->reduce_scatter_sum(in, out, count_per_rank, dtype); });
}
void WatchedCommunicator::barrier() {
  watched("barrier", 0, [&] { inner_->barrier(); });
}

}  // namespace rv::train::dist
