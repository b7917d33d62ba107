// replica_group.cpp: the merge of per-rank batch statistics and the all-reduce of the backward's
// sums for SyncBatchNorm (see replica_group.h).
#include "engine/ops/replica_group.h"

#include <stdexcept>
#include <string>

namespace rv {

GroupStats combine_channel_stats(ReplicaGroup& group, int64_t n_local, const std::vector<double>& mean_local,
                                 const std::vector<double>& m2_local) {
  const int64_t C = int64_t(mean_local.size());
  if (int64_t(m2_local.size()) != C)
    throw std::invalid_argument("combine_channel_stats: mean and m2 have " + std::to_string(C) + " and " +
                                std::to_string(m2_local.size()) + " channels; expected the same");
  // One message per rank: [n_r, mean_r (C), m2_r (C)]. The count travels as a double: exact up
  // to 2^53 values per channel.
  const int64_t row = 1 + 2 * C;
  std::vector<double> mine(size_t(row), 0.0);
  mine[0] = double(n_local);
  for (int64_t c = 0; c < C; ++c) {
    mine[size_t(1 + c)] = n_local > 0 ? mean_local[size_t(c)] : 0.0;
    mine[size_t(1 + C + c)] = n_local > 0 ? m2_local[size_t(c)] : 0.0;
  }
  const int W = group.world_size();
  std::vector<double> all(size_t(W) * size_t(row));
  group.all_gather(mine.data(), row, all.data());

  GroupStats s;
  s.mean.assign(size_t(C), 0.0);
  s.var.assign(size_t(C), 0.0);
  double n = 0;
  for (int r = 0; r < W; ++r) n += all[size_t(r) * size_t(row)];
  s.count = int64_t(n);
  if (s.count == 0) return s;
  // Every rank runs this same loop on the same gathered bits, so all hold the same result.
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;  // sum of n_r mean_r = the sum of every x of the channel
    for (int r = 0; r < W; ++r) {
      const double* q = &all[size_t(r) * size_t(row)];
      sum += q[0] * q[1 + c];
    }
    const double mean = sum / n;
    double m2 = 0;
    for (int r = 0; r < W; ++r) {
      const double* q = &all[size_t(r) * size_t(row)];
      const double d = q[1 + c] - mean;
      m2 += q[1 + C + c] + q[0] * d * d;  // the rank's own spread plus its mean's offset
    }
    s.mean[size_t(c)] = mean;
    s.var[size_t(c)] = m2 / n;
  }
  return s;
}

void all_reduce_channel_sums(ReplicaGroup& group, std::vector<double>& a, std::vector<double>& b) {
  const size_t C = a.size();
  if (b.size() != C)
    throw std::invalid_argument("all_reduce_channel_sums: " + std::to_string(C) + " and " + std::to_string(b.size()) +
                                " channels; expected the same");
  std::vector<double> both(2 * C);
  for (size_t c = 0; c < C; ++c) both[c] = a[c], both[C + c] = b[c];
  group.all_reduce_sum(both.data(), int64_t(both.size()));
  for (size_t c = 0; c < C; ++c) a[c] = both[c], b[c] = both[C + c];
}

}  // namespace rv
