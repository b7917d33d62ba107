// EpochSampler (data/sampler.h): the epoch permutation, rank shares in evaluation (exact
// partition) and training (padding, equal step counts), repeated augmentation, drop_last, and
// the packed augmentation streams.
#include <algorithm>
#include <map>
#include <set>

#include "data/sampler.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

std::vector<int64_t> indices_of(const std::vector<SampleRef>& v) {
  std::vector<int64_t> out;
  for (const SampleRef& s : v) out.push_back(s.index);
  return out;
}

}  // namespace

TEST_CASE("permutation: a permutation, fixed by (seed, epoch), different across epochs and seeds") {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<int64_t> p = permutation(n, 5, 3);
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < n; ++i) CHECK(sorted[size_t(i)] == i);
    CHECK(permutation(n, 5, 3) == p);
  }
  CHECK(permutation(1000, 5, 3) != permutation(1000, 5, 4));
  CHECK(permutation(1000, 5, 3) != permutation(1000, 6, 3));
}

TEST_CASE("permutation: uniform (each element lands in each position equally often)") {
  // n = 5 over 20000 epochs: each of the 25 (element, position) cells expects 4000; a chi-square
  // with 16 degrees of freedom has its 99.99% point near 45. The first position is also the
  // Fisher-Yates draw with the largest bound, where a modulo bias would show.
  const int n = 5, epochs = 20000;
  std::vector<std::vector<int>> count(n, std::vector<int>(n, 0));
  for (int e = 0; e < epochs; ++e) {
    std::vector<int64_t> p = permutation(n, 11, e);
    for (int i = 0; i < n; ++i) count[size_t(p[size_t(i)])][size_t(i)]++;
  }
  double chi2 = 0, expect = double(epochs) / n;
  for (auto& row : count)
    for (int c : row) chi2 += (c - expect) * (c - expect) / expect;
  CHECK(chi2 < 45);
}

TEST_CASE("EpochSampler: evaluation shares partition the data set exactly (sizes not divisible by world * batch)") {
  for (int64_t n : {0, 1, 5, 97, 100, 101}) {
    for (int world : {1, 2, 3, 8}) {
      for (bool shuffle : {false, true}) {
        std::vector<int64_t> all;
        for (int r = 0; r < world; ++r) {
          EpochSampler s({.dataset_size = n, .batch_size = 4, .shuffle = shuffle, .seed = 9, .rank = r, .world_size = world});
          std::vector<SampleRef> mine = s.epoch_samples(2);
          CHECK(int64_t(mine.size()) == s.samples_per_epoch());
          CHECK(s.batches_per_epoch() == (s.samples_per_epoch() + 3) / 4);
          for (const SampleRef& x : mine) {
            CHECK(x.occurrence == 0);
            all.push_back(x.index);
          }
        }
        std::sort(all.begin(), all.end());
        REQUIRE(int64_t(all.size()) == n);
        for (int64_t i = 0; i < n; ++i) CHECK(all[size_t(i)] == i);
      }
    }
  }
  // No shuffle, one rank: the identity order (evaluation reads the data set front to back).
  EpochSampler s({.dataset_size = 6, .shuffle = false});
  CHECK(indices_of(s.epoch_samples(0)) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  // Rank r takes positions r, r + W, ... of the epoch's order.
  EpochSampler r1({.dataset_size = 7, .shuffle = true, .seed = 3, .rank = 1, .world_size = 3});
  std::vector<int64_t> p = permutation(7, 3, 4);
  CHECK(indices_of(r1.epoch_samples(4)) == std::vector<int64_t>{p[1], p[4]});
}

TEST_CASE("EpochSampler: training padding gives every rank the same count, repeating from the start") {
  for (int64_t n : {1, 5, 97, 101}) {
    for (int world : {2, 3, 8}) {
      std::vector<int64_t> all;
      std::map<int64_t, std::set<int64_t>> occurrences;
      int64_t steps = -1;
      for (int r = 0; r < world; ++r) {
        EpochSampler s({.dataset_size = n, .batch_size = 4, .shuffle = true, .pad_to_equal = true, .seed = 1,
                        .rank = r, .world_size = world});
        CHECK(s.samples_per_epoch() == (n + world - 1) / world);
        if (steps >= 0) CHECK(s.batches_per_epoch() == steps);
        steps = s.batches_per_epoch();
        for (const SampleRef& x : s.epoch_samples(0)) {
          all.push_back(x.index);
          CHECK(occurrences[x.index].insert(x.occurrence).second);  // copies get distinct streams
        }
      }
      // Every sample at least once; the extra ones are the first of the permutation.
      const int64_t total = (n + world - 1) / world * world;
      CHECK(int64_t(all.size()) == total);
      CHECK(int64_t(occurrences.size()) == n);
      std::vector<int64_t> p = permutation(n, 1, 0);
      for (int64_t pos = n; pos < total; ++pos) CHECK(occurrences[p[size_t(pos % n)]].count(pos / n) == 1);
    }
  }
}

TEST_CASE("EpochSampler: drop_last drops a short final batch per rank") {
  EpochSampler s({.dataset_size = 103, .batch_size = 10, .drop_last = true, .pad_to_equal = true, .rank = 1,
                  .world_size = 2});
  CHECK(s.samples_per_epoch() == 50);
  CHECK(s.batches_per_epoch() == 5);
  CHECK(s.epoch_samples(0).size() == 50);
  EpochSampler keep({.dataset_size = 103, .batch_size = 10, .pad_to_equal = true, .rank = 1, .world_size = 2});
  CHECK(keep.batches_per_epoch() == 6);
  // The kept samples are the prefix of the undropped order.
  std::vector<SampleRef> a = s.epoch_samples(3), b = keep.epoch_samples(3);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].index == b[i].index);
}

TEST_CASE("EpochSampler: repeated augmentation puts the k copies on k different ranks, with distinct streams") {
  // DeiT's RASampler with world 4, k = 3: expanded = each perm[i] three times; rank r takes
  // positions r, r + 4, ... and keeps ceil(N / 4).
  const int64_t n = 50;
  const int world = 4, k = 3;
  std::vector<int64_t> p = permutation(n, 7, 1);
  std::map<int64_t, std::vector<std::pair<int, int64_t>>> seen;  // index -> (rank, occurrence)
  for (int r = 0; r < world; ++r) {
    EpochSampler s({.dataset_size = n, .batch_size = 8, .shuffle = true, .repeated_augment = k, .seed = 7, .rank = r,
                    .world_size = world});
    CHECK(s.samples_per_epoch() == 13);
    std::vector<SampleRef> mine = s.epoch_samples(1);
    REQUIRE(mine.size() == 13);
    for (size_t t = 0; t < mine.size(); ++t) {
      const int64_t pos = r + int64_t(t) * world;  // timm: indices[rank:total:world]
      CHECK(mine[t].index == p[size_t(pos / k)]);
      CHECK(mine[t].occurrence == pos % k);
      seen[mine[t].index].push_back({r, mine[t].occurrence});
    }
  }
  // 52 positions cover perm[0 .. 17]; a sample whose three copies all fall in them is on three
  // different ranks with occurrences 0, 1, 2.
  int complete = 0;
  for (auto& [index, where] : seen) {
    std::set<int> ranks;
    std::set<int64_t> occ;
    for (auto [r, o] : where) ranks.insert(r), occ.insert(o);
    CHECK(ranks.size() == where.size());
    CHECK(occ.size() == where.size());
    if (where.size() == 3) ++complete;
  }
  CHECK(complete == 17);
  // One rank: each sample three times in a row, as in timm with num_replicas = 1.
  EpochSampler one({.dataset_size = 10, .shuffle = true, .repeated_augment = 3, .seed = 2});
  std::vector<SampleRef> v = one.epoch_samples(0);
  REQUIRE(v.size() == 10);
  std::vector<int64_t> q = permutation(10, 2, 0);
  for (size_t t = 0; t < v.size(); ++t) CHECK((v[t].index == q[t / 3] && v[t].occurrence == int64_t(t % 3)));
}

TEST_CASE("EpochSampler: options it refuses, naming them") {
  CHECK_THROWS_WITH_AS(EpochSampler({.dataset_size = 5, .batch_size = 0}),
                       "EpochSampler: batch_size must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EpochSampler({.dataset_size = 5, .rank = 2, .world_size = 2}),
                       "EpochSampler: rank must be in 0 .. world_size-1 = 1, got 2", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EpochSampler({.dataset_size = 5, .repeated_augment = 0}),
                       "EpochSampler: repeated_augment must be in 1 .. 16, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EpochSampler({.dataset_size = -1}), "EpochSampler: dataset_size must be >= 0, got -1",
                       std::invalid_argument);
  CHECK_THROWS_AS(EpochSampler({.dataset_size = 1, .pad_to_equal = true, .rank = 0, .world_size = 1000}),
                  std::invalid_argument);
  CHECK_THROWS_AS(EpochSampler({.dataset_size = 3}).epoch_samples(-1), std::out_of_range);
}

TEST_CASE("sample_stream: packed fields, never shared between different samples or with the other streams") {
  CHECK(sample_stream(0, 0, 0) == uint64_t(1) << 63);
  CHECK(sample_stream(2, 5, 1) == ((uint64_t(1) << 63) | (uint64_t(2) << 40) | (uint64_t(1) << 32) | 5));
  std::set<uint64_t> all;
  for (int64_t e : {0, 1, 255, 8388607})
    for (int64_t i : {int64_t(0), int64_t(1), int64_t(4294967295)})
      for (int64_t o : {0, 1, 255}) CHECK(all.insert(sample_stream(e, i, o)).second);
  for (int64_t e : {0, 1, 8388607}) {
    CHECK(all.insert(permutation_stream(e)).second);
    CHECK(all.insert(resolution_stream(e)).second);
  }
  CHECK_THROWS_AS(sample_stream(8388608, 0, 0), std::out_of_range);
  CHECK_THROWS_AS(sample_stream(0, int64_t(1) << 32, 0), std::out_of_range);
  CHECK_THROWS_AS(sample_stream(0, 0, 256), std::out_of_range);
}
