// watchdog.h: WatchedCommunicator, a Communicator that puts a time limit on every collective of
// the one it wraps, so a stuck or dead peer ends the run instead of hanging it forever.
//
// A watchdog thread wakes about once a second; when the current collective has run longer
// than dist.timeout_s it prints
//   ropevit: dist watchdog: rank 1: all_reduce (4096 bytes) at step 12 did not finish within 600 s
//   (dist.timeout_s); a peer is stuck or dead. Stopping.
// and ends the process at once with exit status 124 (a blocked MPI or socket call cannot be
// interrupted cleanly; the other ranks then see the connection close, or mpirun ends them).
// Errors thrown by the wrapped collective are rethrown with the rank, step and collective named.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "train/distributed/communicator.h"

namespace rv::train::dist {

class WatchedCommunicator final : public Communicator {
 public:
  WatchedCommunicator(std::shared_ptr<Communicator> inner, double timeout_s);
  ~WatchedCommunicator() override;  // stops the watchdog thread
  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  int local_rank() const override { return inner_->local_rank(); }
  std::string name() const override { return inner_->name(); }
  bool device_collectives() const override { return inner_->device_collectives(); }
  bool any_thread() const override { return inner_->any_thread(); }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override;
  void all_reduce_sum_deferred(void* data, int64_t count, DType dtype) override;
  void wait_deferred() override { inner_->wait_deferred(); }  // queues a stream wait: nothing to time
  void broadcast(void* data, int64_t bytes, int root) override;
  void all_gather(const void* in, int64_t bytes, void* out) override;
  void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) override;
  void barrier() override;
  void set_step(int64_t step) override { step_ = step; }

 private:
  template <class F> void watched(const char* op, int64_t bytes, F&& f);
  void watch();  // the thread's loop

  std::shared_ptr<Communicator> inner_;
  double timeout_s_;
  std::atomic<int64_t> step_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  const char* op_ = nullptr;  // the collective running now (nullptr: none)
  int64_t bytes_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
};

}  // namespace rv::train::dist
