// sampler.cpp: the epoch permutation and each rank's share of it (see sampler.h).
#include "data/sampler.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "engine/rng.h"

namespace rv::data {

namespace {

constexpr int64_t kMaxEpoch = (int64_t(1) << 23) - 1;
constexpr int64_t kMaxOccurrence = 255;
constexpr int64_t kMaxIndex = (int64_t(1) << 32) - 1;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_epoch(int64_t epoch, const char* who) {
  if (epoch < 0 || epoch > kMaxEpoch)
    throw std::out_of_range(std::string(who) + ": epoch " + std::to_string(epoch) + " is outside 0 .. " +
                            std::to_string(kMaxEpoch));
}

// Sequential 32-bit words of one Philox stream, generated 256 at a time.
class WordStream {
 public:
  WordStream(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint32_t next() {
    if (pos_ == kChunk) {
      philox_words(seed_, stream_, first_, kChunk, buf_);
      first_ += kChunk;
      pos_ = 0;
    }
    return buf_[pos_++];
  }

 private:
  static constexpr int kChunk = 256;
  uint64_t seed_, stream_, first_ = 0;
  uint32_t buf_[kChunk];
  int pos_ = kChunk;
};

// Uniform in [0, bound) for 0 < bound <= 2^32, without bias (Lemire's multiply-high with
// rejection of the few low words that would favour some values).
uint32_t bounded(WordStream& ws, uint64_t bound) {
  const uint64_t threshold = (uint64_t(1) << 32) % bound;  // (2^32 - bound) mod bound
  for (;;) {
    const uint64_t m = uint64_t(ws.next()) * bound;
    if (uint32_t(m) >= threshold) return uint32_t(m >> 32);
  }
}

}  // namespace

uint64_t sample_stream(int64_t epoch, int64_t index, int64_t occurrence) {
  check_epoch(epoch, "sample_stream");
  if (index < 0 || index > kMaxIndex)
    throw std::out_of_range("sample_stream: index " + std::to_string(index) + " is outside 0 .. 2^32-1");
  if (occurrence < 0 || occurrence > kMaxOccurrence)
    throw std::out_of_range("sample_stream: occurrence " + std::to_string(occurrence) +
                            " is outside 0 .. 255 (repeated_augment too large, or far more ranks than samples)");
  return (uint64_t(1) << 63) | (uint64_t(epoch) << 40) | (uint64_t(occurrence) << 32) | uint64_t(index);
}

uint64_t permutation_stream(int64_t epoch) {
  check_epoch(epoch, "permutation_stream");
  return (uint64_t(1) << 62) | uint64_t(epoch);
}

uint64_t resolution_stream(int64_t epoch) {
  check_epoch(epoch, "resolution_stream");
  return (uint64_t(1) << 61) | uint64_t(epoch);
}

std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  if (n < 0 || n > kMaxIndex + 1)
    throw std::out_of_range("permutation: size " + std::to_string(n) + " is outside 0 .. 2^32");
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  WordStream ws(seed, permutation_stream(epoch));
  // Fisher-Yates from the back: position i takes a uniform pick among positions 0 .. i.
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(bounded(ws, uint64_t(i) + 1))]);
  return p;
}

EpochSampler::EpochSampler(SamplerOptions opt) : opt_(opt) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("EpochSampler: " + what); };
  if (opt_.dataset_size < 0) fail("dataset_size must be >= 0, got " + std::to_string(opt_.dataset_size));
  if (opt_.dataset_size > kMaxIndex + 1) fail("dataset_size must be at most 2^32");
  if (opt_.batch_size < 1) fail("batch_size must be >= 1, got " + std::to_string(opt_.batch_size));
  if (opt_.world_size < 1) fail("world_size must be >= 1, got " + std::to_string(opt_.world_size));
  if (opt_.rank < 0 || opt_.rank >= opt_.world_size)
    fail("rank must be in 0 .. world_size-1 = " + std::to_string(opt_.world_size - 1) + ", got " +
         std::to_string(opt_.rank));
  if (opt_.repeated_augment < 1 || opt_.repeated_augment > 16)
    fail("repeated_augment must be in 1 .. 16, got " + std::to_string(opt_.repeated_augment));
  const int64_t n = opt_.dataset_size, w = opt_.world_size, k = opt_.repeated_augment;
  if (k > 1) {
    share_ = ceil_div(n * k, w);
    samples_ = ceil_div(n, w);  // RA's cut: the epoch is as long as without RA
  } else if (opt_.pad_to_equal) {
    share_ = samples_ = ceil_div(n, w);
  } else {
    share_ = samples_ = n > opt_.rank ? ceil_div(n - opt_.rank, w) : 0;
  }
  if (opt_.drop_last) samples_ = samples_ / opt_.batch_size * opt_.batch_size;
  // Padding wraps around the expanded list; the occurrence numbers of the wraps must fit.
  if (n > 0 && (k > 1 || opt_.pad_to_equal)) {
    const int64_t wraps = (share_ * w - 1) / (n * k);
    if (k * wraps + k - 1 > kMaxOccurrence)
      fail("world_size " + std::to_string(w) + " is so much larger than the data set (" + std::to_string(n) +
           " samples) that padding would repeat each sample more than 255 times");
  }
}

int64_t EpochSampler::batches_per_epoch() const { return ceil_div(samples_, opt_.batch_size); }

std::vector<SampleRef> EpochSampler::epoch_samples(int64_t epoch) const {
  check_epoch(epoch, "EpochSampler::epoch_samples");
  const int64_t n = opt_.dataset_size, k = opt_.repeated_augment, w = opt_.world_size;
  std::vector<int64_t> order;
  if (opt_.shuffle) {
    order = permutation(n, opt_.seed, epoch);
  } else {
    order.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  }
  std::vector<SampleRef> out;
  out.reserve(size_t(samples_));
  const int64_t expanded = n * k;
  for (int64_t t = 0; t < samples_; ++t) {
    const int64_t pos = opt_.rank + t * w;        // position in the padded list
    const int64_t base = pos % expanded, wrap = pos / expanded;
    out.push_back({order[size_t(base / k)], k * wrap + base % k});
  }
  return out;
}

}  // namespace rv::data
