// grad_sync.h: what data-parallel training adds to a step: the same starting weights on every
// rank, and gradients averaged over the ranks before the optimizer sees them (PyTorch DDP's job).
//
//   broadcast_state(model.state_dict(), comm);  // at start: rank 0's parameters and buffers
//   GradientSync sync(params, comm);            // buckets fixed once, hooks on the parameters
//   for each micro-batch m of the step:
//     sync.prepare_backward(m == last);         // arm the buckets for the step's last backward
//     loss.backward();                          // buckets fly as their gradients become final
//   sync.finish();                              // grad = (sum over ranks of grad) / world_size
//
// Buckets: the parameters in reverse order (the order the backward produces their gradients),
// cut into buckets of about 25 MB (DDP's default), each reduced as one flat f32 buffer.
//
// Overlap (dist.overlap, on by default): each parameter carries a post-accumulate-grad hook
// (engine/autograd_hooks.h). During the step's last backward, the hook marks the parameter's
// gradient final; when every gradient of a bucket is final, the bucket is packed and its
// all-reduce launched while the backward goes on with the earlier layers:
//   - host communicators (MPI, TCP): on a communication thread owned by this object, which takes
//     the packed buckets from a queue; the training thread keeps computing the backward;
//   - a device communicator (NCCL): queued on its communication stream by the training thread,
//     fenced after the packing copies but without making the compute stream wait for it
//     (Communicator::all_reduce_sum_deferred), so the rest of the backward's kernels run while it
//     does; finish() makes the compute stream wait (wait_deferred) before it unpacks.
// Collectives must be issued in the same order on every rank, but the order in which buckets
// complete can differ (a parameter unused on one rank, a graph that differs): buckets are launched
// strictly in index order, a bucket that completes early waiting for the ones before it (as DDP).
// finish() launches whatever is left (in the same order), waits for every bucket, then unpacks
// and divides. With overlap off, finish() does it all after the backward, on the calling thread.
// Both give the same bits: same buckets, same rank-order sums, the same 1/W.
//
// Gradient accumulation: prepare_backward(false) before the micro-steps that only accumulate;
// their hooks do nothing, and nothing is reduced until the last one (prepare_backward(true)),
// whose hooks see the accumulated gradients. finish() must be called once per step on every
// rank, also when the step is skipped (a non-finite loss on some rank): other ranks may have
// buckets in flight already.
//
// Unused parameters (no gradient in the last backward; DDP's find_unused_parameters case): their
// hooks never fire, so their bucket is not launched during the backward; finish() launches it,
// with the gradient the parameter has (from an earlier micro-step) or zeros. Nothing to
// configure, no error; such a bucket just does not overlap. A parameter with no gradient on any
// rank keeps none; one with a gradient on some ranks only is counted as zero on the others (one
// small all-reduce of flags per step, after the buckets).
//
// While buckets are in flight (from the first launch to the end of finish()) the communicator
// belongs to GradientSync: the caller must make no other collective on it in that window (the
// trainer's loss all-reduce comes after finish()). A collective issued from another thread
// meanwhile would interleave differently on different ranks.
//
// Failures: the watchdog (watchdog.h) wraps the communicator, so a bucket stuck on the comm
// thread ends the process naming all_reduce, the step and the rank, as on the training thread. An
// error thrown by a bucket's collective is kept and rethrown by finish() on the training thread.
//
// Where the bucket lives: with parameters on the CPU, in host memory. With parameters on a
// device, in a device buffer: the gradients are copied into it on the device (one device copy
// per parameter, on the compute stream), then
//   - a device communicator (NCCL, Communicator::device_collectives) all-reduces it in place on
//     its communication stream, fenced against the compute stream (nccl_communicator.h; with
//     overlap the second fence comes once, in finish()), and the host never waits;
//   - a host communicator (MPI, TCP) gets a host copy of the bucket (the comm thread reduces it)
//     and the sums are copied back: correct, but two transfers per bucket and a host wait each
//     time, so slow; it is the fallback of builds without NCCL.
// The sums are then scaled by 1/W and copied into the gradients.
//
// Averaging is exact to float rounding: the sum is in rank order (communicator.h), so N ranks
// with B/N images each reach what one rank with B images reaches up to the order in which
// float additions happen (the per-rank batch sums, then the sum over ranks).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/autograd_hooks.h"
#include "engine/nn/state_dict.h"
#include "train/distributed/communicator.h"

namespace rv::train::dist {

inline constexpr int64_t kDefaultBucketBytes = int64_t(25) << 20;

// Every tensor of `state` (contiguous, any dtype) takes rank `root`'s values, in place. Tensors on
// a device go through the communicator's device path, or through a host copy with a host one.
void broadcast_state(const nn::StateDict& state, Communicator& comm, int root = 0);

class GradientSync {
 public:
  // params: float32 trainable parameters, all on one device. Throws std::invalid_argument for
  // another dtype or a mix of devices. overlap: launch buckets from the backward (see above);
  // ignored (nothing to overlap) with one rank.
  GradientSync(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes = kDefaultBucketBytes,
               bool overlap = true);
  ~GradientSync();  // waits for buckets in flight, stops the comm thread
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Before each backward of a step: `last` = this backward ends the step (its gradients are
  // reduced). Only then do the hooks launch buckets; on accumulation micro-steps they do nothing.
  void prepare_backward(bool last);
  // All-reduces and averages every gradient: launches the buckets not launched yet, waits for
  // all, unpacks, divides by the world size. Once per step, on every rank. A no-op with one rank.
  void finish();

  bool overlapped() const { return overlap_; }
  size_t num_buckets() const { return buckets_.size(); }
  // The parameter indices (into `params`) of bucket b, in the order they are packed.
  const std::vector<size_t>& bucket(size_t b) const { return buckets_.at(b).members; }
  // How many buckets the last finish() found launched already (during the backward).
  size_t launched_before_finish() const { return launched_before_finish_; }

 private:
  struct Bucket {
    std::vector<size_t> members;
    int64_t numel = 0;
    int64_t offset = 0;  // where it starts in the flat buffers (all buckets back to back)
    size_t pending = 0;  // members whose gradient is not final yet in this step's last backward
  };
  void on_final_gradient(size_t k);  // the hook of parameter k
  void launch_ready();               // launches complete buckets, in index order
  void launch(size_t b);             // packs bucket b and starts (or runs) its all-reduce
  void pack_host(const Bucket& b);
  void pack_device(const Bucket& b);
  void unpack(const Bucket& b, float inv_world);
  void wait_reduced();               // until the comm thread has reduced every queued bucket
  void comm_loop();                  // the comm thread
  void reset_step();

  std::vector<Tensor> params_;
  Communicator& comm_;
  Device device_;                    // where the parameters (and their gradients) live
  bool overlap_ = false;
  bool use_thread_ = false;          // a host communicator with overlap: buckets go to comm_loop
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;    // per parameter: its bucket
  std::vector<float> host_flat_;     // every bucket, flat (CPU parameters, or host staging)
  Tensor device_flat_;               // parameters on a device: every bucket, flat, on that device
  std::vector<int64_t> has_grad_;    // per parameter: 1 when this rank has a gradient
  std::vector<autograd::HookHandle> hooks_;

  // This step (training thread only).
  bool armed_ = false;               // prepare_backward(true) was called: hooks launch buckets
  std::vector<char> final_;          // per parameter: its hook fired in this step
  size_t next_launch_ = 0;           // buckets [0, next_launch_) are launched
  size_t launched_before_finish_ = 0;

  // The comm thread and its queue: buckets [reduced_, queued_) wait for it (guarded by mu_).
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t queued_ = 0, reduced_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;         // the first collective that threw
};

}  // namespace rv::train::dist
