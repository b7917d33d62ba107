// loader.cpp: data::Loader, worker threads that build whole batches ahead of the consumer,
// in the order EpochSampler fixes (see loader.h for the contract).
//
// State machine, all under one mutex:
//   start_epoch  -> a new Plan (this rank's samples of the epoch), generation += 1,
//                   next_claim = next_out = skip, finished batches of the old epoch dropped;
//   a worker     -> claims batch next_claim while next_claim < next_out + capacity, builds it
//                   unlocked, then files it under its step (or drops it if the generation moved);
//   next()       -> waits for the batch numbered next_out, takes it, next_out += 1.
// Batches in flight plus batches waiting never exceed capacity = workers * prefetch_batches,
// which bounds memory. Which worker builds which batch varies run to run; what a batch holds
// does not, since it depends only on the plan and the step.
//
// Batch buffers are recycled: the loader keeps the image tensors it handed out (a few more
// than the queue holds) and reuses one once nobody else holds it or a view of it (its
// TensorImpl and its Storage both have use_count 1; the autograd graph's saved copies count
// too). A 256-image ImageNet batch is 154 MB: allocating it fresh each step means an mmap and
// 37,000 page faults, and pinned host memory (CUDA) is far dearer to allocate than to reuse.
#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/random_draws.h"
#include "data/sampler.h"
#include "engine/backend.h"

namespace rv::data {

int64_t batch_resolution(const std::vector<int64_t>& resolutions, uint64_t seed, int64_t epoch, int64_t step) {
  if (resolutions.empty()) throw std::invalid_argument("batch_resolution: the list of resolutions is empty");
  if (step < 0) throw std::invalid_argument("batch_resolution: step must be >= 0, got " + std::to_string(step));
  // Each step has its own block of the epoch's resolution stream: a pure function of the step,
  // so a resumed run and every rank draw the same side without replaying earlier steps.
  Generator gen(seed, resolution_stream(epoch));
  gen.set_offset(uint64_t(step) * 4096);  // room for draw_int's rare redraws
  return resolutions[size_t(draw_int(gen, 0, int64_t(resolutions.size()) - 1))];
}

namespace {

// This rank's samples of one epoch, shared by the consumer and the workers building it.
struct Plan {
  int64_t epoch = 0;
  int64_t batches = 0;
  std::vector<SampleRef> samples;
};

// A sample skip replaced: its data set index and the error it failed with.
struct BadSample {
  int64_t index = 0;
  std::string message;
};

// A built batch, or the error that stopped it; the samples skip replaced in it.
struct Slot {
  Batch batch;
  std::exception_ptr error;
  std::vector<BadSample> bad;
};

}  // namespace

struct Loader::Impl {
  const Dataset& dataset;
  const LoaderOptions opt;
  const EpochSampler sampler;
  const int64_t capacity;
  const int64_t max_bad;  // skip: the failures an epoch may have, max(1, max_bad_fraction * samples)

  std::mutex mu;
  std::condition_variable work_cv;   // workers wait here for a batch to claim
  std::condition_variable ready_cv;  // next() waits here for its batch
  std::shared_ptr<const Plan> plan;  // null before the first start_epoch
  std::atomic<uint64_t> generation{0};
  int64_t next_claim = 0, next_out = 0;
  bool stopped = false;   // the epoch ended early with an error
  bool shutdown = false;  // the destructor runs
  std::map<int64_t, Slot> ready;
  int64_t bad_total = 0, bad_epoch = 0;  // skip: failures handed out (next())
  std::set<int64_t> reported;            // data set indices whose error was logged
  std::vector<Tensor> buffers;  // image tensors handed out, for reuse (see above)
  std::vector<std::thread> threads;

  Impl(const Dataset& ds, const LoaderOptions& o)
      : dataset(ds),
        opt(o),
        sampler(SamplerOptions{.dataset_size = ds.size(),
                               .batch_size = o.batch_size,
                               .shuffle = o.shuffle,
                               .drop_last = o.drop_last,
                               .pad_to_equal = o.pad_to_equal,
                               .repeated_augment = o.repeated_augment,
                               .seed = o.seed,
                               .rank = o.rank,
                               .world_size = o.world_size}),
        capacity(int64_t(o.workers) * o.prefetch_batches),
        max_bad(std::max<int64_t>(1, int64_t(o.max_bad_fraction * double(sampler.samples_per_epoch())))) {}

  // A batch tensor other than the images: pinned when the options ask for it.
  Tensor host_tensor(const Shape& shape, DType dtype) const {
    return opt.pin_memory ? empty_pinned(shape, dtype) : empty(shape, dtype);
  }

  // An f32 tensor of `shape` for a batch's images: a pooled one nobody else holds, or a new
  // one, pooled while the pool is under its size.
  Tensor acquire_images(const Shape& shape) {
    if (opt.pin_memory) return empty_pinned(shape, DType::f32);
    std::lock_guard<std::mutex> lock(mu);
    const size_t max_pool = size_t(std::max<int64_t>(capacity, 1)) + 3;  // the queue, the consumer's batch, slack
    int64_t spare = -1;  // a free buffer of another shape, to replace when the pool is full
    for (size_t i = 0; i < buffers.size(); ++i) {
      const Tensor& t = buffers[i];
      if (t.impl_ptr().use_count() != 1 || t.storage().use_count() != 1) continue;
      // Pairs with the release in the consumer's last shared_ptr decrement: its reads and
      // writes of the buffer happen before ours.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (t.shape() == shape) return t;
      spare = int64_t(i);
    }
    Tensor t = empty(shape, DType::f32);
    if (buffers.size() < max_pool) buffers.push_back(t);
    else if (spare >= 0) buffers[size_t(spare)] = t;
    return t;
  }

  // "Loader: sample i of <data set> (epoch e, batch b) failed: <what>", for the exception in flight.
  std::string sample_error(const Plan& p, int64_t step, int64_t index) const {
    std::string what;
    try {
      throw;
    } catch (const std::exception& e) {
      what = std::string(": ") + e.what();
    } catch (...) {
      what = " with an exception that is not a std::exception";
    }
    return "Loader: sample " + std::to_string(index) + " of " + dataset.describe() + " (epoch " +
           std::to_string(p.epoch) + ", batch " + std::to_string(step) + ") failed" + what;
  }

  // The sample at position `pos` of the plan (row of batch `step`), made by `load(index, gen)`,
  // which writes it and returns its label (checked here). Sets `index` to the sample the row
  // holds. stop: the first error, naming the sample. skip: the substitute rule (loader.h), the
  // failure appended to `bad`; an error when no substitute loads within max_bad positions.
  template <class Load>
  int64_t load_row(const Plan& p, int64_t step, int64_t pos, std::vector<BadSample>& bad, int64_t& index, Load&& load) {
    const int64_t n = int64_t(p.samples.size());
    const bool skip = opt.on_bad_sample == OnBadSample::skip;
    const int64_t tries = skip ? std::min<int64_t>(max_bad + 1, n) : 1;
    std::string first_error;
    for (int64_t t = 0; t < tries; ++t) {
      const SampleRef s = p.samples[size_t((pos + t) % n)];
      try {
        Generator g(opt.seed, sample_stream(p.epoch, s.index, s.occurrence));
        const int64_t label = load(s.index, g);
        if (label < 0 || label >= dataset.num_classes())
          throw std::runtime_error("label " + std::to_string(label) + " is outside 0 .. " +
                                   std::to_string(dataset.num_classes() - 1));
        index = s.index;
        if (t > 0)
          bad.push_back({p.samples[size_t(pos)].index, first_error + " (skipped: data.on_bad_sample = skip; its row holds sample " +
                                                           std::to_string(s.index) + ")"});
        return label;
      } catch (...) {
        if (t > 0) continue;  // a failing substitute is counted at its own position
        first_error = sample_error(p, step, s.index);
        if (!skip) throw std::runtime_error(first_error);
      }
    }
    throw std::runtime_error(first_error + "; and the " + std::to_string(tries - 1) +
                             " samples after it in the epoch's order, tried in turn as its substitute "
                             "(data.on_bad_sample = skip), failed too: stopping");
  }

  // skip: a batch of two or more rows none of which loaded is a broken data set, not a bad file.
  void check_not_all_bad(const Plan& p, int64_t step, int64_t rows, const std::vector<BadSample>& bad) const {
    if (rows > 1 && int64_t(bad.size()) == rows)
      throw std::runtime_error("Loader: every sample of batch " + std::to_string(step) + " of epoch " +
                               std::to_string(p.epoch) + " of " + dataset.describe() +
                               " failed (data.on_bad_sample = skip stops rather than train on substitutes only); the first: " +
                               bad.front().message);
  }

  // Batch `step` of samples of different sizes (opt.pad): every sample through get(), then
  // padded into one tensor (pad_batch.h); targets and valid sizes per row.
  Batch build_padded(const Plan& p, int64_t step, uint64_t gen_at_claim, int64_t begin, int64_t rows, Batch b,
                     std::vector<BadSample>& bad) {
    std::vector<Sample> samples(static_cast<size_t>(rows));
    std::vector<Shape> shapes(static_cast<size_t>(rows));
    int64_t* labels = b.labels.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      if (generation.load(std::memory_order_relaxed) != gen_at_claim) return Batch{};
      Sample& smp = samples[size_t(r)];
      labels[r] = load_row(p, step, begin + r, bad, b.indices[size_t(r)], [&](int64_t index, Generator& g) {
        smp = dataset.get(index, g);
        if (!smp.image.defined() || smp.image.dtype() != DType::f32 || smp.image.dim() != 3)
          throw std::runtime_error("the sample's image is not a float32 (C, H, W) tensor");
        return smp.label;
      });
      shapes[size_t(r)] = smp.image.shape();
    }
    check_not_all_bad(p, step, rows, bad);
    b.images = acquire_images(padded_batch_shape(shapes, *opt.pad));
    b.image_sizes.resize(size_t(rows));
    b.targets.resize(size_t(rows));
    for (int64_t r = 0; r < rows; ++r) {
      pad_into(samples[size_t(r)].image, *opt.pad, b.images.select(0, r));
      b.image_sizes[size_t(r)] = {shapes[size_t(r)][1], shapes[size_t(r)][2]};
      b.targets[size_t(r)] = std::move(samples[size_t(r)].targets);
    }
    b.bad_samples = int64_t(bad.size());
    return b;
  }

  // Builds batch `step` of `p`, appending the failures skip replaced to `bad`. Throws the first
  // sample error (stop), naming the index; returns early (an undefined batch) when the
  // generation moves on, so start_epoch and the destructor do not wait for a whole stale batch.
  Batch build(const Plan& p, int64_t step, uint64_t gen_at_claim, std::vector<BadSample>& bad) {
    const int64_t begin = step * opt.batch_size;
    const int64_t rows = std::min<int64_t>(opt.batch_size, int64_t(p.samples.size()) - begin);
    SampleRequest req;
    if (!opt.resolutions.empty()) req.height = req.width = batch_resolution(opt.resolutions, opt.seed, p.epoch, step);
    Batch b;
    b.epoch = p.epoch;
    b.step = step;
    b.indices.resize(size_t(rows));
    b.labels = host_tensor({rows}, DType::i64);
    int64_t* labels = b.labels.data<int64_t>();
    if (opt.pad) return build_padded(p, step, gen_at_claim, begin, rows, std::move(b), bad);
    const Shape shape = dataset.sample_shape(req);
    // Dense labels: the label maps get their own (B, H, W) u8 tensor, allocated with the images
    // (not pooled: a twelfth of the images' bytes). Either shape unknown: both come from the
    // first sample.
    const bool dense = dataset.has_label_maps();
    const Shape label_shape = dense ? dataset.label_map_shape(req) : Shape{};
    if (!shape.empty() && (!dense || !label_shape.empty())) {
      Shape full = {rows};
      full.insert(full.end(), shape.begin(), shape.end());
      b.images = acquire_images(full);
      if (dense) {
        Shape lfull = {rows};
        lfull.insert(lfull.end(), label_shape.begin(), label_shape.end());
        b.label_maps = host_tensor(lfull, DType::u8);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      if (generation.load(std::memory_order_relaxed) != gen_at_claim) return Batch{};
      labels[r] = load_row(p, step, begin + r, bad, b.indices[size_t(r)], [&](int64_t index, Generator& g) -> int64_t {
        if (b.images.defined()) {
          if (dense) return dataset.get_into_with_label_map(index, g, req, b.images.select(0, r), b.label_maps.select(0, r));
          return dataset.get_into(index, g, req, b.images.select(0, r));
        }
        // The shape is known only from the first sample that loads.
        Sample first = dataset.get(index, g);
        if (!first.image.defined() || first.image.dtype() != DType::f32)
          throw std::runtime_error("the sample's image is not a defined float32 tensor");
        if (dense && (!first.label_map.defined() || first.label_map.dtype() != DType::u8 || first.label_map.dim() != 2))
          throw std::runtime_error("the sample's label map is not a defined uint8 (H, W) tensor");
        Shape full = {rows};
        full.insert(full.end(), first.image.shape().begin(), first.image.shape().end());
        b.images = acquire_images(full);
        b.images.select(0, r).copy_(first.image);
        if (dense) {
          b.label_maps = host_tensor({rows, first.label_map.size(0), first.label_map.size(1)}, DType::u8);
          b.label_maps.select(0, r).copy_(first.label_map);
        }
        return first.label;
      });
    }
    check_not_all_bad(p, step, rows, bad);
    b.bad_samples = int64_t(bad.size());
    return b;
  }

  void worker_loop() {
#ifdef _OPENMP
    // The workers are the parallelism: a worker's ops (interpolate, ...) run single-threaded
    // rather than each opening a full OpenMP team. omp_set_num_threads affects this thread only.
    omp_set_num_threads(1);
#endif
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] {
        return shutdown || (plan && !stopped && next_claim < plan->batches && next_claim < next_out + capacity);
      });
      if (shutdown) return;
      const int64_t step = next_claim++;
      const uint64_t gen = generation.load();
      std::shared_ptr<const Plan> p = plan;
      lock.unlock();
      Slot slot;
      try {
        slot.batch = build(*p, step, gen, slot.bad);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      if (generation.load() != gen) continue;  // start_epoch came meanwhile: a stale batch
      ready.emplace(step, std::move(slot));
      ready_cv.notify_all();
    }
  }
};

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), opt_(std::move(options)) {
  if (!dataset_) throw std::invalid_argument("Loader: the dataset is null");
  if (opt_.workers < 0) throw std::invalid_argument("Loader: workers must be >= 0, got " + std::to_string(opt_.workers));
  if (opt_.prefetch_batches < 1)
    throw std::invalid_argument("Loader: prefetch_batches must be >= 1, got " + std::to_string(opt_.prefetch_batches));
  if (opt_.pad && !opt_.resolutions.empty())
    throw std::invalid_argument("Loader: pad and resolutions cannot be combined (padded batches take each sample's own size)");
  if (opt_.pad) padded_batch_shape({{1, 1, 1}}, *opt_.pad);  // checks the options now, not at the first batch
  if (opt_.pin_memory) {
    try {
      backend::get(cuda_device(0));  // throws, saying why, without CUDA or a GPU
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("Loader: pin_memory needs a CUDA device: ") + e.what());
    }
  }
  if (!(opt_.max_bad_fraction >= 0 && opt_.max_bad_fraction <= 1))
    throw std::invalid_argument("Loader: max_bad_fraction must be in [0, 1], got " + std::to_string(opt_.max_bad_fraction));
  for (int64_t r : opt_.resolutions) {
    if (r < 1) throw std::invalid_argument("Loader: resolutions must be >= 1, got " + std::to_string(r));
    if (dataset_->sample_shape({r, r}).empty())
      throw std::invalid_argument("Loader: " + dataset_->describe() +
                                  " cannot make samples at a requested size (LoaderOptions::resolutions needs a data "
                                  "set whose sample_shape() and get_into() take the size); leave resolutions empty");
  }
  impl_ = std::make_unique<Impl>(*dataset_, opt_);  // the sampler checks the rest
  for (int w = 0; w < opt_.workers; ++w) impl_->threads.emplace_back([this] { impl_->worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->shutdown = true;
    impl_->generation.fetch_add(1);  // lets a worker abandon the batch it is building
  }
  impl_->work_cv.notify_all();
  for (std::thread& t : impl_->threads) t.join();
}

void Loader::start_epoch(int64_t epoch, int64_t skip_batches) {
  auto p = std::make_shared<Plan>();
  p->epoch = epoch;
  p->samples = impl_->sampler.epoch_samples(epoch);  // checks the epoch
  p->batches = impl_->sampler.batches_per_epoch();
  if (skip_batches < 0 || skip_batches > p->batches)
    throw std::out_of_range("Loader::start_epoch: skip_batches must be in 0 .. " + std::to_string(p->batches) +
                            " (the batches per epoch on this rank), got " + std::to_string(skip_batches));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->generation.fetch_add(1);
    impl_->plan = std::move(p);
    impl_->next_claim = impl_->next_out = skip_batches;
    impl_->stopped = false;
    impl_->bad_epoch = 0;
    impl_->ready.clear();
  }
  impl_->work_cv.notify_all();
}

std::optional<Batch> Loader::next() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> lock(im.mu);
  if (!im.plan) throw std::logic_error("Loader::next: call start_epoch(epoch) first");
  if (im.stopped || im.next_out >= im.plan->batches) return std::nullopt;
  Slot slot;
  if (opt_.workers == 0) {
    const int64_t step = im.next_out++;
    std::shared_ptr<const Plan> p = im.plan;
    const uint64_t gen = im.generation.load();
    lock.unlock();  // nothing else runs; unlocked only so that the build never holds the mutex
    try {
      slot.batch = im.build(*p, step, gen, slot.bad);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
  } else {
    im.ready_cv.wait(lock, [&] { return im.ready.count(im.next_out) > 0; });
    auto it = im.ready.find(im.next_out);
    slot = std::move(it->second);
    im.ready.erase(it);
    ++im.next_out;
    im.work_cv.notify_all();  // a place in the queue opened
  }
  // skip: count the batch's failures, report each index's first, and stop past the limit.
  std::vector<std::string> to_log;
  if (!slot.error && !slot.bad.empty()) {
    im.bad_total += int64_t(slot.bad.size());
    im.bad_epoch += int64_t(slot.bad.size());
    for (const BadSample& bs : slot.bad)
      if (im.reported.insert(bs.index).second) to_log.push_back(bs.message);
    if (im.bad_epoch > im.max_bad)
      slot.error = std::make_exception_ptr(std::runtime_error(
          "Loader: " + std::to_string(im.bad_epoch) + " samples of epoch " + std::to_string(im.plan->epoch) +
          " failed by batch " + std::to_string(slot.batch.step) + ", more than the " + std::to_string(im.max_bad) +
          " allowed (max_bad_fraction " + std::to_string(opt_.max_bad_fraction) + " of the " +
          std::to_string(samples_per_epoch()) + " samples per epoch, at least 1): stopping rather than training on "
          "substitutes. The last: " + slot.bad.back().message));
  }
  if (slot.error) {
    im.stopped = true;  // workers stop claiming; what they finish is dropped at start_epoch
    im.ready.clear();
  }
  lock.unlock();
  for (const std::string& m : to_log) {
    if (opt_.log) opt_.log(m);
    else std::cerr << m << "\n";
  }
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

int64_t Loader::bad_samples() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->bad_total;
}

int64_t Loader::epoch_bad_samples() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->bad_epoch;
}

OnBadSample parse_on_bad_sample(const std::string& name) {
  if (name == "stop") return OnBadSample::stop;
  if (name == "skip") return OnBadSample::skip;
  throw std::invalid_argument("on_bad_sample: expected \"stop\" or \"skip\", got \"" + name + "\"");
}

const char* on_bad_sample_name(OnBadSample v) { return v == OnBadSample::skip ? "skip" : "stop"; }

int64_t Loader::batches_per_epoch() const { return impl_->sampler.batches_per_epoch(); }
int64_t Loader::samples_per_epoch() const { return impl_->sampler.samples_per_epoch(); }

std::string Loader::describe() const {
  std::string s = dataset_->describe() + ": rank " + std::to_string(opt_.rank) + " of " +
                  std::to_string(opt_.world_size) + ", " + std::to_string(samples_per_epoch()) + " samples in " +
                  std::to_string(batches_per_epoch()) + " batches of " + std::to_string(opt_.batch_size) +
                  " per epoch (" + (opt_.shuffle ? "shuffled" : "in order");
  if (opt_.repeated_augment > 1)
    s += "; repeated augmentation x" + std::to_string(opt_.repeated_augment) + ", padded: training only";
  else if (opt_.pad_to_equal && opt_.world_size > 1)
    s += "; padded to equal steps: training only";
  else if (opt_.world_size > 1)
    s += "; exact shards, no sample repeated";
  if (opt_.drop_last) s += "; last short batch dropped";
  if (opt_.on_bad_sample == OnBadSample::skip) s += "; bad samples skipped (up to " + std::to_string(impl_->max_bad) + " per epoch)";
  s += "), ";
  if (opt_.pad) {
    s += "padded to a multiple of " + std::to_string(opt_.pad->size_divisor);
    if (opt_.pad->min_height > 0 || opt_.pad->min_width > 0)
      s += " (at least " + std::to_string(opt_.pad->min_height) + "x" + std::to_string(opt_.pad->min_width) + ")";
    s += ", ";
  }
  if (!opt_.resolutions.empty()) {
    s += "sides";
    for (size_t i = 0; i < opt_.resolutions.size(); ++i) {
      s += i ? '/' : ' ';
      s += std::to_string(opt_.resolutions[i]);
    }
    s += " per batch, ";
  }
  return s + (opt_.workers == 0 ? std::string("on the calling thread") : std::to_string(opt_.workers) + " workers");
}

int64_t Loader::epoch() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->plan ? impl_->plan->epoch : -1;
}

}  // namespace rv::data
