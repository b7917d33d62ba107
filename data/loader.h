// loader.h: data::Loader, batches from a Dataset on worker threads, in an order fixed by the seed.
//
//   Loader loader(dataset, {.batch_size = 256, .shuffle = true, .workers = 4, .seed = 0,
//                           .rank = r, .world_size = n});
//   loader.start_epoch(epoch);                 // or start_epoch(epoch, k) to resume at batch k
//   while (auto batch = loader.next()) train_step(batch->images, batch->labels);
//
// Determinism contract (what resume and multi-rank runs rely on):
//   - the epoch's permutation depends only on (seed, epoch) (Philox, engine/rng.h); the rank's
//     share of it only on (rank, world_size): rank r takes positions r, r + n, r + 2n, ...;
//   - sample i of epoch e is augmented with Generator(seed, stream = f(epoch, i, copy))
//     (data::sample_stream, sampler.h; `copy` tells repeated-augmentation and padding copies
//     apart): the same sample gets the same pixels whatever the worker count, timing or rank;
//   - with `resolutions`, batch b of epoch e is made at the size drawn for (seed, epoch, b),
//     the same on every rank;
//   - start_epoch(e, k) yields exactly the batches k, k+1, ... of an uninterrupted epoch e.
// Training (drop_last or pad) vs evaluation (exact): with pad_to_equal, ranks whose share is
// short repeat samples from the start of the permutation so every rank runs the same number of
// steps (training only; describe() says so, for the log); without it each rank gets exactly its own samples and
// the union over ranks is the data set once, as exact evaluation needs. The order and the
// shares are data::EpochSampler's (sampler.h), which spells out padding and RA.
//
// Threads: `workers` threads each build whole batches (batch b is built by one thread, which
// takes a (B, C, H, W) buffer, recycled once the consumer has dropped it, and has the data set
// write each sample straight into its row, Dataset::get_into), at most workers * prefetch_batches batches ahead of the consumer;
// next() hands them out in order. Workers run their OpenMP regions on one thread (the workers
// are the parallelism). With workers = 0, next() builds the batch on the calling thread.
//
// Detection (LoaderOptions::pad set): samples differ in size, so each is made with get() and
// the batch is padded at the bottom / right to its largest size, rounded up to the divisor
// (pad_batch.h, mmdet's DetDataPreprocessor); Batch::image_sizes gives each row's valid size
// and Batch::targets its boxes. The padded size is a function of the batch's samples, so the
// determinism above holds unchanged.
//
// Bad samples (a corrupt or truncated file: get() / get_into() throws). With
// on_bad_sample = stop (the default) the epoch stops with the error, naming the file and the
// data set index. With skip, the row is filled by a substitute, chosen by a rule that depends
// only on the epoch's plan, so the determinism above still holds:
//   the sample at position j of this rank's epoch order fails -> the row takes the sample at
//   position j + 1 (wrapping to 0 after the last), or j + 2 if that fails too, ..., made
//   exactly as at its own position (its own augmentation stream), and Batch::indices names it.
// Each failure is counted once, at its own position (bad_samples(), epoch_bad_samples(),
// Batch::bad_samples), and its error is reported through LoaderOptions::log once per data set
// index for the loader's life. Counting and reporting happen in next(), on the consumer's
// thread, in batch order, so they too are the same for any worker count. A run that fails too
// often still stops, with an error: more than max(1, max_bad_fraction * samples per epoch)
// failures in an epoch, every row of a batch of two or more failing, or no substitute found
// within that many positions.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/pad_batch.h"

namespace rv::data {

// What the loader does with a sample that throws (see above).
enum class OnBadSample { stop, skip };
// "stop" / "skip" (config key data.on_bad_sample); anything else throws, naming the choices.
OnBadSample parse_on_bad_sample(const std::string& name);
const char* on_bad_sample_name(OnBadSample v);

struct LoaderOptions {
  int64_t batch_size = 1;  // on each rank
  bool shuffle = true;         // false: identity order (evaluation)
  bool drop_last = false;      // drop a final short batch (training)
  bool pad_to_equal = false;   // training across ranks: equal step counts (see above)
  int repeated_augment = 1;    // DeiT's RA sampler: each sample k times per epoch (k > 1), on different ranks
  int workers = 0;             // 0: samples are made on the calling thread
  int prefetch_batches = 2;    // per worker: the bound of the queue
  uint64_t seed = 0;
  int rank = 0, world_size = 1;
  // Multi-resolution training: each batch's images are made at a square side drawn uniformly
  // from this list, per (seed, epoch, batch number); empty: the data set's own size.
  std::vector<int64_t> resolutions = {};
  // Samples of different sizes (detection): pad each batch (see above); unset: one shape.
  std::optional<PadOptions> pad = std::nullopt;
  // Bad samples (see above): stop the epoch, or replace and count them.
  OnBadSample on_bad_sample = OnBadSample::stop;
  double max_bad_fraction = 0.01;  // skip: more failures per epoch than this share (at least 1) stop
  // skip: where each bad sample's error is reported (once per index); unset: std::cerr.
  std::function<void(const std::string&)> log = nullptr;
  // Batches in page-locked memory (torch's pin_memory=True), for training on a GPU: then
  // batch.images.to(cuda, true) is one asynchronous DMA and the batch is never copied twice.
  // Needs a CUDA device (the loader's constructor says so otherwise). The pinned allocator
  // (cuda/allocator/pinned_host_allocator.h) then is the buffer pool: it hands a buffer out again
  // only once the DMA that read it is done, which the loader's own pool could not know.
  bool pin_memory = false;
};

struct Batch {
  Tensor images;                 // (B, C, H, W) float32
  Tensor labels;                 // (B,) int64
  // (B, H, W) uint8 per-pixel classes (255 = ignore), only for a data set with label maps
  // (Dataset::has_label_maps, segmentation); undefined otherwise. uint8, not int64: ADE20k's 150
  // classes and 255 fit, and a 16 x 512 x 512 batch is 4 MB instead of 32 MB.
  Tensor label_maps;
  std::vector<int64_t> indices;  // data set index of each row (a substitute's own, see above)
  int64_t bad_samples = 0;       // rows whose own sample failed and holds a substitute (skip)
  int64_t epoch = 0;
  int64_t step = 0;              // batch number within the epoch on this rank, from 0
  // With LoaderOptions::pad only (else empty):
  std::vector<std::array<int64_t, 2>> image_sizes;        // each row's valid (H, W), top-left
  std::vector<std::shared_ptr<const DetTarget>> targets;  // each row's Sample::targets
};

// The side drawn for batch `step` of `epoch` from `resolutions` (non-empty), as the loader does.
int64_t batch_resolution(const std::vector<int64_t>& resolutions, uint64_t seed, int64_t epoch, int64_t step);

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~Loader();  // stops and joins the workers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins epoch `epoch`, skipping its first `skip_batches` batches (resume); any batches of
  // the previous epoch still queued are discarded.
  void start_epoch(int64_t epoch, int64_t skip_batches = 0);
  // The next batch of this rank, or nullopt at the end of the epoch. A sample that throws
  // (e.g. a corrupt file) stops the epoch with that error, naming the data set index, unless
  // on_bad_sample = skip (see above); next() throws it once, then returns nullopt until the
  // next start_epoch.
  std::optional<Batch> next();
  // Samples replaced under on_bad_sample = skip, counted as next() hands their batches out:
  // over the loader's life, and in the epoch started last (from its resume batch on).
  int64_t bad_samples() const;
  int64_t epoch_bad_samples() const;
  int64_t batches_per_epoch() const;  // on this rank
  int64_t samples_per_epoch() const;  // on this rank, after drop_last / padding
  int64_t epoch() const;              // the epoch started last (-1 before any)
  // One line for the run's log: the data set, this rank's share, and whether it is padded
  // (training only) or exact, e.g. "fashion-mnist train, ...: rank 0 of 2, 30000 samples in
  // 118 batches of 256 per epoch (shuffled; padded to equal steps: training only), 4 workers".
  std::string describe() const;
  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return opt_; }

 private:
  struct Impl;
  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions opt_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rv::data
