// replica_group.h: the ranks a synchronised batch norm spans (SyncBatchNorm), as the engine sees
// them, and the two cross-rank steps of its arithmetic.
//
// The engine does not know how processes talk (MPI, TCP sockets, NCCL live in train/distributed/);
// it only needs two collectives over a few per-channel numbers (C values, host memory, f64), so
// this interface is all it asks for. train/distributed/replica_group_adapter.h implements it over
// a dist::Communicator.
//
//   combine_channel_stats  each rank's (count, mean, sum of squared deviations) per channel, all
//                          gathered and merged in rank order -> the global count, mean and
//                          biased variance, the same bits on every rank
//   all_reduce_channel_sums  the backward's per-channel sums (sum dy, sum dy (x - mean)) added
//                          over ranks in rank order
// Why gather the statistics rather than all-reduce sum x and sum x^2: the merge of per-rank
// means and squared deviations (Chan et al.'s parallel variance) stays accurate when |mean| >>
// std, as the two-pass variance of the single-process batch norm does, and ranks with different
// batch sizes (even zero) merge exactly. It is what torch.nn.SyncBatchNorm gathers (mean, invstd
// and count per rank).
#pragma once
#include <cstdint>
#include <vector>

namespace rv {

class ReplicaGroup {
 public:
  virtual ~ReplicaGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // out (world_size * count doubles) = rank 0's `in`, then rank 1's, ...; the same on every rank.
  virtual void all_gather(const double* in, int64_t count, double* out) = 0;
  // In place: data[i] = sum over ranks of data[i], added in rank order ((r0 + r1) + r2) + ...,
  // so every rank holds the same bits.
  virtual void all_reduce_sum(double* data, int64_t count) = 0;
};

// Per-channel statistics of the whole group's batch.
struct GroupStats {
  int64_t count = 0;         // values per channel over all ranks (B * H * W summed)
  std::vector<double> mean;  // (C)
  std::vector<double> var;   // (C), biased (divided by count)
};

// Collective: every rank passes its own count n_r (values per channel), mean_r and m2_r =
// sum (x - mean_r)^2 per channel (C each; anything when n_r = 0); every rank gets the merge:
//   n = sum n_r,  mean = sum n_r mean_r / n,  m2 = sum (m2_r + n_r (mean_r - mean)^2),  var = m2 / n
// with the sums in rank order. count 0 gives mean 0 and var 0.
GroupStats combine_channel_stats(ReplicaGroup& group, int64_t n_local, const std::vector<double>& mean_local,
                                 const std::vector<double>& m2_local);

// Collective: a and b (C each) become their sums over ranks (one all-reduce of 2C values).
void all_reduce_channel_sums(ReplicaGroup& group, std::vector<double>& a, std::vector<double>& b);

}  // namespace rv
