// Loader (data/loader.h): batches bit for bit the same for any worker count and prefetch depth,
// resume at batch k, rank shares, repeated augmentation, multi-resolution batches, errors that
// name the sample (no deadlock), and destruction mid-epoch.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "data/loader.h"
#include "data/random_draws.h"
#include "data/sampler.h"
#include "engine/backend.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// Sample i: an image (1, S, S) holding i in pixel 0 and draws from `gen` elsewhere (so the
// augmentation stream shows in the bits), label i % 10. It can throw at one index, and sleep a
// little (a pseudo-random amount per index) so that workers finish out of order.
class ToyDataset : public Dataset {
 public:
  explicit ToyDataset(int64_t n, int64_t side = 3, int64_t throw_at = -1, bool jitter = false)
      : n_(n), side_(side), throw_at_(throw_at), jitter_(jitter) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 10; }
  std::string describe() const override { return "toy(" + std::to_string(n_) + ")"; }
  Shape sample_shape(const SampleRequest& req) const override {
    const int64_t s = req.has_size() ? req.height : side_;
    return {1, s, s};
  }
  Sample get(int64_t index, Generator& gen) const override {
    Tensor img = empty({1, side_, side_});
    const int64_t label = get_into(index, gen, {}, img);
    return {img, label};
  }
  int64_t get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const override {
    calls.fetch_add(1);
    if (index == throw_at_) throw std::runtime_error("corrupt file");
    if (jitter_) std::this_thread::sleep_for(std::chrono::microseconds((index * 7919) % 300));
    const int64_t s = req.has_size() ? req.height : side_;
    if (out.shape() != Shape{1, s, s}) throw std::logic_error("ToyDataset: wrong row shape " + shape_str(out.shape()));
    float* p = out.data<float>();
    p[0] = float(index);
    for (int64_t i = 1; i < s * s; ++i) p[i] = float(draw_uniform01(gen));
    return index % 10;
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, side_, throw_at_;
  bool jitter_;
};

// Only get(): the loader learns the shape from the first sample and uses the default get_into.
class PlainDataset : public Dataset {
 public:
  int64_t size() const override { return 9; }
  int64_t num_classes() const override { return 3; }
  std::string describe() const override { return "plain"; }
  Sample get(int64_t index, Generator& gen) const override {
    Tensor img = full({2, 1, index == 7 ? 3 : 2}, double(index));
    img.data<float>()[1] = float(draw_uniform01(gen));
    return {img, index % 3};
  }
};

std::vector<Batch> run_epoch(Loader& loader, int64_t epoch, int64_t skip = 0) {
  loader.start_epoch(epoch, skip);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), size_t(a.numel()) * a.itemsize()) == 0;
}

void check_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].step == b[i].step);
    CHECK(a[i].epoch == b[i].epoch);
    CHECK(a[i].indices == b[i].indices);
    CHECK(same_bits(a[i].images, b[i].images));
    CHECK(same_bits(a[i].labels, b[i].labels));
  }
}

}  // namespace

TEST_CASE("Loader: the same batches, bit for bit, for 0, 1 and 3 workers and any prefetch depth") {
  auto ds = std::make_shared<ToyDataset>(53, 3, -1, /*jitter=*/true);
  LoaderOptions base{.batch_size = 8, .shuffle = true, .seed = 42};
  Loader ref_loader(ds, base);
  std::vector<Batch> ref = run_epoch(ref_loader, 3);
  REQUIRE(ref.size() == 7);
  CHECK(ref.back().images.shape() == Shape{5, 1, 3, 3});  // a short final batch is kept
  // The rows are the epoch's permutation in order; pixel 0 is the index, labels follow.
  std::vector<int64_t> p = permutation(53, 42, 3);
  for (size_t b = 0; b < ref.size(); ++b) {
    CHECK(ref[b].step == int64_t(b));
    for (size_t r = 0; r < ref[b].indices.size(); ++r) {
      CHECK(ref[b].indices[r] == p[b * 8 + r]);
      CHECK(ref[b].images.data<float>()[r * 9] == float(p[b * 8 + r]));
      CHECK(ref[b].labels.data<int64_t>()[r] == p[b * 8 + r] % 10);
    }
  }
  for (int workers : {1, 3}) {
    for (int prefetch : {1, 2, 5}) {
      LoaderOptions o = base;
      o.workers = workers;
      o.prefetch_batches = prefetch;
      Loader l(ds, o);
      CAPTURE(workers);
      CAPTURE(prefetch);
      check_same_batches(run_epoch(l, 3), ref);
      check_same_batches(run_epoch(l, 3), ref);  // the same epoch again on the same loader
    }
  }
  // Another epoch: another order and other pixels for the same sample.
  std::vector<Batch> e4 = run_epoch(ref_loader, 4);
  CHECK(e4[0].indices != ref[0].indices);
}

TEST_CASE("Loader: a sample's pixels depend on (seed, epoch, index) only, not on its rank or position") {
  auto ds = std::make_shared<ToyDataset>(20);
  auto pixels_by_index = [&](LoaderOptions o) {
    std::map<int64_t, std::vector<float>> m;
    Loader l(ds, o);
    for (const Batch& b : run_epoch(l, 1))
      for (size_t r = 0; r < b.indices.size(); ++r) {
        const float* p = b.images.data<float>() + r * 9;
        m[b.indices[r]] = std::vector<float>(p, p + 9);
      }
    return m;
  };
  auto one = pixels_by_index({.batch_size = 4, .shuffle = true, .seed = 5});
  auto unshuffled = pixels_by_index({.batch_size = 3, .shuffle = false, .seed = 5});
  CHECK(one == unshuffled);
  std::map<int64_t, std::vector<float>> ranks;
  for (int r = 0; r < 3; ++r) {
    auto m = pixels_by_index({.batch_size = 2, .shuffle = true, .workers = 2, .seed = 5, .rank = r, .world_size = 3});
    ranks.insert(m.begin(), m.end());
  }
  CHECK(ranks == one);
  CHECK(pixels_by_index({.batch_size = 4, .shuffle = true, .seed = 6}) != one);
}

TEST_CASE("Loader: start_epoch(e, k) yields exactly batches k, k+1, ... of the full epoch") {
  auto ds = std::make_shared<ToyDataset>(37, 3, -1, true);
  for (int workers : {0, 2}) {
    Loader l(ds, {.batch_size = 5, .shuffle = true, .drop_last = true, .workers = workers, .seed = 1});
    CHECK(l.batches_per_epoch() == 7);
    std::vector<Batch> full = run_epoch(l, 2);
    REQUIRE(full.size() == 7);
    for (int64_t k : {0, 1, 4, 6, 7}) {
      std::vector<Batch> tail = run_epoch(l, 2, k);
      check_same_batches(tail, std::vector<Batch>(full.begin() + k, full.end()));
    }
    // Restarting mid-epoch discards what was prefetched: a fresh epoch after two batches of
    // another one is still exact.
    l.start_epoch(9);
    REQUIRE(l.next());
    REQUIRE(l.next());
    check_same_batches(run_epoch(l, 2, 3), std::vector<Batch>(full.begin() + 3, full.end()));
    CHECK_THROWS_AS(l.start_epoch(2, 8), std::out_of_range);
    CHECK_THROWS_AS(l.start_epoch(2, -1), std::out_of_range);
  }
}

TEST_CASE("Loader: ranks partition the data set in evaluation; padding equalises steps in training") {
  for (int64_t n : {29, 64, 65}) {
    const int world = 3;
    std::vector<int64_t> all;
    for (int r = 0; r < world; ++r) {
      Loader l(std::make_shared<ToyDataset>(n), {.batch_size = 4, .shuffle = false, .workers = 1, .rank = r,
                                                 .world_size = world});
      for (const Batch& b : run_epoch(l, 0)) all.insert(all.end(), b.indices.begin(), b.indices.end());
    }
    std::sort(all.begin(), all.end());
    REQUIRE(int64_t(all.size()) == n);
    for (int64_t i = 0; i < n; ++i) CHECK(all[size_t(i)] == i);
    std::set<int64_t> steps;
    for (int r = 0; r < world; ++r) {
      Loader l(std::make_shared<ToyDataset>(n), {.batch_size = 4, .shuffle = true, .drop_last = false,
                                                 .pad_to_equal = true, .rank = r, .world_size = world});
      steps.insert(int64_t(run_epoch(l, 0).size()));
      CHECK(l.samples_per_epoch() == (n + 2) / 3);
    }
    CHECK(steps.size() == 1);
  }
}

TEST_CASE("Loader: repeated augmentation gives the copies of a sample different pixels") {
  auto ds = std::make_shared<ToyDataset>(12);
  Loader l(ds, {.batch_size = 6, .shuffle = true, .repeated_augment = 3, .workers = 2, .seed = 3});
  std::vector<Batch> v = run_epoch(l, 0);
  REQUIRE(v.size() == 2);
  // One rank: each sample three times in a row, each copy with its own stream.
  const Batch& b = v[0];
  for (int c = 0; c < 2; ++c) {
    CHECK(b.indices[size_t(3 * c)] == b.indices[size_t(3 * c + 1)]);
    const float* p = b.images.data<float>() + 3 * c * 9;
    CHECK(p[0] == p[9]);
    CHECK(p[1] != p[10]);
    CHECK(p[10] != p[19]);
  }
}

TEST_CASE("Loader: multi-resolution batches are square, one side per batch, fixed by (seed, epoch, step)") {
  auto ds = std::make_shared<ToyDataset>(40);
  const std::vector<int64_t> sides = {2, 3, 5};
  LoaderOptions o{.batch_size = 4, .shuffle = true, .seed = 8, .resolutions = sides};
  Loader ref_loader(ds, o);
  std::vector<Batch> ref = run_epoch(ref_loader, 1);
  std::set<int64_t> used;
  for (const Batch& b : ref) {
    const int64_t s = batch_resolution(sides, 8, 1, b.step);
    CHECK(b.images.shape() == Shape{4, 1, s, s});
    used.insert(s);
  }
  CHECK(used.size() == 3);
  o.workers = 3;
  o.rank = 1;
  o.world_size = 2;
  Loader other_rank(ds, o);
  std::vector<Batch> r1 = run_epoch(other_rank, 1);
  for (const Batch& b : r1) CHECK(b.images.size(2) == ref[size_t(b.step)].images.size(2));
  // Uniform over the list (3 sides, 3000 steps: 1000 each, the 99.99% band is about +-140).
  std::map<int64_t, int> count;
  for (int64_t s = 0; s < 3000; ++s) count[batch_resolution(sides, 8, 1, s)]++;
  for (int64_t s : sides) CHECK(std::abs(count[s] - 1000) < 140);
  CHECK_THROWS_AS(Loader(ds, {.resolutions = {0}}), std::invalid_argument);
}

TEST_CASE("Loader: a data set with get() only; shape from the first sample, mismatches refused") {
  auto ds = std::make_shared<PlainDataset>();
  Loader l(ds, {.batch_size = 3, .shuffle = false});
  l.start_epoch(0);
  auto b0 = l.next();
  REQUIRE(b0);
  CHECK(b0->images.shape() == Shape{3, 2, 1, 2});
  CHECK(b0->images.data<float>()[2 * 2] == 1.0f);  // row 1 is sample 1
  auto b1 = l.next();  // samples 3, 4, 5
  REQUIRE(b1);
  // Sample 7 has another shape: an error naming it.
  CHECK_THROWS_WITH_AS(l.next(), doctest::Contains("sample 7 of plain"), std::runtime_error);
  CHECK_FALSE(l.next());  // the epoch ended with the error
  CHECK_THROWS_WITH_AS(Loader(ds, {.batch_size = 3, .shuffle = false, .resolutions = {4}}),
                       doctest::Contains("plain cannot make samples at a requested size"), std::invalid_argument);
}

TEST_CASE("Loader: a throwing sample surfaces as an error naming its index, for any worker count, no deadlock") {
  for (int workers : {0, 1, 3}) {
    CAPTURE(workers);
    auto ds = std::make_shared<ToyDataset>(30, 3, /*throw_at=*/17, true);
    Loader l(ds, {.batch_size = 4, .shuffle = false, .workers = workers, .prefetch_batches = 2});
    l.start_epoch(0);
    int good = 0;
    std::string message;
    try {
      while (l.next()) ++good;
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(good == 4);  // batches 0..3 hold samples 0..15; batch 4 holds 17
    CHECK(message == "Loader: sample 17 of toy(30) (epoch 0, batch 4) failed: corrupt file");
    CHECK_FALSE(l.next());
    // The loader is usable again: a new epoch runs up to the same error.
    l.start_epoch(1);
    CHECK(l.next());
  }
}

TEST_CASE("Loader: destruction mid-epoch joins the workers; the queue bound holds") {
  auto ds = std::make_shared<ToyDataset>(1000, 3, -1, true);
  for (int rep = 0; rep < 5; ++rep) {
    Loader l(ds, {.batch_size = 4, .workers = 3, .prefetch_batches = 2});
    l.start_epoch(0);
    CHECK(l.next());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }  // destructors join here; a hang or a leak (under ASan/valgrind) fails the test
  // With nobody consuming, workers stop after workers * prefetch batches.
  auto quiet = std::make_shared<ToyDataset>(1000);
  Loader l(quiet, {.batch_size = 4, .workers = 2, .prefetch_batches = 3});
  auto settle = [&](int64_t target) {  // waits for the workers to reach `target`, then a little more
    for (int i = 0; i < 500 && quiet->calls.load() < target; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return quiet->calls.load();
  };
  l.start_epoch(0);
  CHECK(settle(2 * 3 * 4) == 2 * 3 * 4);
  CHECK(l.next());
  CHECK(settle(7 * 4) == 7 * 4);
  // Without start_epoch, next() says what to do.
  Loader fresh(quiet, {});
  CHECK_THROWS_WITH_AS(fresh.next(), "Loader::next: call start_epoch(epoch) first", std::logic_error);
  CHECK(fresh.epoch() == -1);
  l.start_epoch(3);
  CHECK(l.epoch() == 3);
  CHECK(fresh.describe() ==
        "toy(1000): rank 0 of 1, 1000 samples in 1000 batches of 1 per epoch (shuffled), on the calling thread");
  Loader train(quiet, {.batch_size = 64, .drop_last = true, .pad_to_equal = true, .workers = 4, .rank = 1,
                       .world_size = 3, .resolutions = {16, 24}});
  CHECK(train.describe() == "toy(1000): rank 1 of 3, 320 samples in 5 batches of 64 per epoch (shuffled; padded to "
                            "equal steps: training only; last short batch dropped), sides 16/24 per batch, 4 workers");
  Loader eval(quiet, {.batch_size = 100, .shuffle = false, .rank = 2, .world_size = 3});
  CHECK(eval.describe() == "toy(1000): rank 2 of 3, 333 samples in 4 batches of 100 per epoch (in order; exact "
                           "shards, no sample repeated), on the calling thread");
  // An empty data set: an epoch with no batches, for any worker count.
  for (int workers : {0, 2}) {
    Loader none(std::make_shared<ToyDataset>(0), {.batch_size = 4, .workers = workers});
    none.start_epoch(0);
    CHECK(none.batches_per_epoch() == 0);
    CHECK_FALSE(none.next());
  }
  CHECK_THROWS_AS(Loader(quiet, {.workers = -1}), std::invalid_argument);
  CHECK_THROWS_AS(Loader(nullptr, {}), std::invalid_argument);
}

TEST_CASE("Loader: batch buffers are reused once dropped, never while anything still holds them") {
  auto ds = std::make_shared<ToyDataset>(200);
  for (int workers : {0, 2}) {
    CAPTURE(workers);
    Loader l(ds, {.batch_size = 5, .shuffle = true, .workers = workers, .prefetch_batches = 2, .seed = 4});
    // Dropping each batch: the epoch's 40 batches cycle through a few buffers.
    std::set<const void*> seen;
    l.start_epoch(0);
    while (auto b = l.next()) seen.insert(b->images.raw_data());
    CHECK(seen.size() <= size_t(2 * workers + 4));
    // Holding a view of a batch (as an autograd graph holds its saved input) keeps the buffer.
    l.start_epoch(1);
    Tensor kept = l.next()->images.narrow(0, 1, 2);
    Tensor copy = kept.clone();
    while (auto b = l.next()) {
      CHECK(b->images.raw_data() != kept.raw_data());
      CHECK(b->images.storage() != kept.storage());
    }
    CHECK(std::memcmp(kept.raw_data(), copy.raw_data(), size_t(copy.numel()) * 4) == 0);
  }
  // Reuse changes no value: an epoch read while dropping batches equals one read while keeping
  // them all (every batch compared right when it arrives).
  Loader keep(ds, {.batch_size = 5, .workers = 2, .seed = 4});
  std::vector<Batch> all = run_epoch(keep, 2);
  Loader drop(ds, {.batch_size = 5, .workers = 2, .seed = 4});
  drop.start_epoch(2);
  size_t i = 0;
  while (auto b = drop.next()) {
    REQUIRE(i < all.size());
    CHECK(same_bits(b->images, all[i].images));
    CHECK(b->indices == all[i].indices);
    ++i;
  }
  CHECK(i == all.size());
}

TEST_CASE("Loader: pin_memory gives the same batches in page-locked memory, or says it needs a CUDA device") {
  auto ds = std::make_shared<ToyDataset>(10);
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 1;
  o.seed = 3;
  LoaderOptions pinned = o;
  pinned.pin_memory = true;
  if (backend::device_count(DeviceType::cuda) == 0) {
    // CI and machines without a GPU: a clear error at construction, not at the first batch.
    CHECK_THROWS_WITH_AS(Loader(ds, pinned), doctest::Contains("pin_memory needs a CUDA device"), std::invalid_argument);
    return;
  }
  Loader plain_loader(ds, o), pinned_loader(ds, pinned);
  const std::vector<Batch> a = run_epoch(plain_loader, 0), b = run_epoch(pinned_loader, 0);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].images.is_pinned());
    CHECK(b[i].labels.is_pinned());
    CHECK_FALSE(a[i].images.is_pinned());
    RV_EXPECT_CLOSE(b[i].images, a[i].images, 0, 0);
    RV_EXPECT_CLOSE(b[i].labels.to(DType::f64), a[i].labels.to(DType::f64), 0, 0);
  }
}
