// grad_sync.h: what data-parallel training adds to a step: the same starting weights on every
// rank, and gradients averaged over the ranks before the optimizer sees them (PyTorch DDP's job).
//
//   broadcast_state(model.state_dict(), comm);  // at start: rank 0's parameters and buffers
//   GradientSync sync(params, comm);            // buckets fixed once
//   ... backward of every micro-batch ...
//   sync.average();                             // grad = (sum over ranks of grad) / world_size
//
// Buckets: the parameters in reverse order (the order the backward produces their gradients),
// cut into buckets of about 25 MB (DDP's default), each reduced as one flat f32 buffer. The
// reduction runs after the whole backward (launching each bucket as its last gradient arrives,
// to overlap the backward, is left for later).
//
// Where the bucket lives: with parameters on the CPU, in host memory. With parameters on a
// device, in a device buffer: the gradients are copied into it on the device (one device copy
// per parameter, on the compute stream), then
//   - a device communicator (NCCL, Communicator::device_collectives) all-reduces it in place on
//     its communication stream, fenced against the compute stream (nccl_communicator.h), and
//     the host never waits;
//   - a host communicator (MPI, TCP) gets a host copy of the bucket and the sums are copied
//     back: correct, but two transfers per bucket and a host wait each time, so slow; it is the
//     fallback of builds without NCCL.
// The sums are then scaled by 1/W (one device kernel per bucket) and copied into the gradients.
//
// A parameter with no gradient on any rank (unused this step) keeps none; one with a gradient
// on some ranks only is counted as zero on the others (one small all-reduce of flags per step).
// Averaging is exact to float rounding: the sum is in rank order (communicator.h), so N ranks
// with B/N images each reach what one rank with B images reaches up to the order in which
// float additions happen (the per-rank batch sums, then the sum over ranks).
#pragma once
#include <cstdint>
#include <vector>

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
  // another dtype or a mix of devices.
  GradientSync(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes = kDefaultBucketBytes);
  // All-reduces and averages every gradient (a no-op with one rank).
  void average();
  size_t num_buckets() const { return buckets_.size(); }
  // The parameter indices (into `params`) of bucket b, in the order they are packed.
  const std::vector<size_t>& bucket(size_t b) const { return buckets_.at(b).members; }

 private:
  struct Bucket {
    std::vector<size_t> members;
    int64_t numel = 0;
  };
  void average_on_device(const Bucket& b, float inv_world);  // parameters on a device

  std::vector<Tensor> params_;
  Communicator& comm_;
  Device device_;                  // where the parameters (and their gradients) live
  Tensor device_staging_;          // parameters on a device: one bucket, flat, on that device
  std::vector<Bucket> buckets_;
  std::vector<float> staging_;   // parameters on the CPU: one bucket, flat
  std::vector<int64_t> has_grad_;  // per parameter: 1 when this rank has a gradient
};

}  // namespace rv::train::dist
