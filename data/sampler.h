// sampler.h: data::EpochSampler, which samples of the data set one rank sees in one epoch, and
// in what order: the epoch permutation, repeated augmentation, sharding by rank, padding.
//
//   perm     = permutation(N, seed, epoch)            (identity when not shuffling)
//   expanded = each perm[i] k times in a row           (k = repeated_augment; k = 1: perm itself)
//   padded   = expanded, extended cyclically to a multiple of world_size   (training only)
//   rank r   = padded[r], padded[r + W], padded[r + 2W], ...
//
// - Evaluation (no padding, k = 1): rank r gets positions r, r + W, ... < N, so the ranks'
//   shares are disjoint and their union is the data set exactly once; shares differ by at most
//   one sample, so ranks may run different numbers of steps (fine for evaluation, whose counts
//   are summed across ranks).
// - Training with pad_to_equal (PyTorch's DistributedSampler): every rank gets ceil(N / W)
//   samples, the short ones repeating samples from the start of the order.
// - Repeated augmentation (DeiT's RASampler, timm's RepeatAugSampler with selected_round = 0):
//   the k copies of a sample sit next to each other in `expanded`, so with W >= k they land on
//   k different ranks (each sees a different augmentation of it); every rank keeps the first
//   ceil(N / W) of its share, so an epoch has as many steps as without RA and sees about N / k
//   distinct images. It always pads (it is a training sampler).
// - drop_last then drops a final short batch of the rank's share.
//
// Each entry carries an `occurrence`: 0 for a sample's first appearance, c for its c-th RA
// copy, and k * wrap + c for a padded repeat. The loader keys the sample's augmentation stream
// by (epoch, index, occurrence) (sample_stream), so copies differ and everything else is the
// same whatever the rank, world size or order.
#pragma once
#include <cstdint>
#include <vector>

namespace rv::data {

struct SamplerOptions {
  int64_t dataset_size = 0;
  int64_t batch_size = 1;
  bool shuffle = true;
  bool drop_last = false;
  bool pad_to_equal = false;
  int repeated_augment = 1;
  uint64_t seed = 0;
  int rank = 0, world_size = 1;
};

struct SampleRef {
  int64_t index = 0;       // data set index
  int64_t occurrence = 0;  // which copy of it this is in the epoch (see above)
};

class EpochSampler {
 public:
  explicit EpochSampler(SamplerOptions opt);  // checks the options; throws naming the bad one

  // This rank's samples of epoch `epoch` in order, after padding, RA and drop_last.
  std::vector<SampleRef> epoch_samples(int64_t epoch) const;
  int64_t samples_per_epoch() const { return samples_; }  // on this rank
  int64_t batches_per_epoch() const;                       // on this rank
  const SamplerOptions& options() const { return opt_; }

 private:
  SamplerOptions opt_;
  int64_t share_ = 0;    // entries this rank takes from the padded list (before RA's cut and drop_last)
  int64_t samples_ = 0;  // what it keeps
};

// A uniformly random permutation of 0 .. n-1 (Fisher-Yates on Philox words), a function of
// (n, seed, epoch) only.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch);

// The Philox stream (engine/rng.h) of sample `index`'s augmentation in epoch `epoch`, for its
// `occurrence`-th copy: Generator(seed, sample_stream(...)). The fields are packed, not hashed,
// so two different samples never share a stream: bit 63 set (the other loader streams have it
// clear), epoch in bits 40..62, occurrence in 32..39, index in 0..31. Throws beyond those ranges.
uint64_t sample_stream(int64_t epoch, int64_t index, int64_t occurrence);

// The streams of the loader's other draws; both have bit 63 clear, so they never meet a
// sample stream, and different top bits, so they never meet each other.
uint64_t permutation_stream(int64_t epoch);  // 0b01 << 62 | epoch
uint64_t resolution_stream(int64_t epoch);   // 0b001 << 61 | epoch

}  // namespace rv::data
