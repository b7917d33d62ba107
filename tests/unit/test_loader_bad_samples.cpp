// Loader with bad samples (LoaderOptions::on_bad_sample, data/loader.h): stop names the file;
// skip fills the row by the substitute rule (the next position of the epoch's order that
// loads), counts each failure once, reports its error once, keeps the determinism contract
// (any worker count, resume) and still stops past max_bad_fraction or on a batch of failures.
// First on a tiny in-memory data set (every loader path: known shape, shape from the first
// sample, padded, label maps), then on real files with truncated bytes: ImageFolder (a
// truncated JPEG), CocoDetectionDataset (a truncated JPEG) and SegmentationDataset (a
// truncated image PNG, and a truncated label-map PNG).
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "data/coco_detection.h"
#include "data/decode_jpeg.h"
#include "data/image_encode.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/random_draws.h"
#include "data/sampler.h"
#include "data/scene_files.h"
#include "data/scenes.h"
#include "data/seg_dataset.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

enum class Kind { known_shape, first_sample, padded, dense };

// Sample i: one channel filled with i + a draw from the generator (so a row shows both which
// sample it is and which augmentation stream made it), label i % 3; the indices in `bad` throw
// as a corrupt file would. padded: sample i is (1, 2 + i % 3, 3); dense: a (2, 2) label map of i.
class Flaky : public Dataset {
 public:
  Flaky(int64_t n, std::set<int64_t> bad, Kind kind) : n_(n), bad_(std::move(bad)), kind_(kind) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 3; }
  std::string describe() const override { return "flaky"; }
  Sample get(int64_t i, Generator& gen) const override {
    if (bad_.count(i)) throw std::runtime_error("img" + std::to_string(i) + ".jpg: corrupt or truncated JPEG");
    const double v = double(i) + draw_uniform01(gen);
    Sample s;
    s.image = full({1, kind_ == Kind::padded ? 2 + i % 3 : 2, 3}, v);
    s.label = i % 3;
    if (kind_ == Kind::dense) s.label_map = full({2, 2}, double(i), DType::u8);
    return s;
  }
  Shape sample_shape(const SampleRequest&) const override {
    return kind_ == Kind::known_shape || kind_ == Kind::dense ? Shape{1, 2, 3} : Shape{};
  }
  bool has_label_maps() const override { return kind_ == Kind::dense; }
  Shape label_map_shape(const SampleRequest&) const override { return {2, 2}; }

 private:
  int64_t n_;
  std::set<int64_t> bad_;
  Kind kind_;
};

bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

struct Run {
  std::vector<Batch> batches;
  int64_t bad = 0, epoch_bad = 0;
  std::vector<std::string> logged;
};

// An epoch (from batch `skip` on) of `ds` under `opt`, the log collected.
Run run_epoch(std::shared_ptr<const Dataset> ds, LoaderOptions opt, int64_t epoch, int64_t skip = 0) {
  Run r;
  opt.log = [&r](const std::string& m) { r.logged.push_back(m); };
  Loader loader(std::move(ds), opt);
  loader.start_epoch(epoch, skip);
  while (auto b = loader.next()) r.batches.push_back(std::move(*b));
  r.bad = loader.bad_samples();
  r.epoch_bad = loader.epoch_bad_samples();
  return r;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The substitute rule applied by hand: for each position of the epoch's order, the position
// whose sample the row holds (itself, or the next one after it that does not fail, wrapping).
std::vector<SampleRef> substituted_plan(const LoaderOptions& o, int64_t dataset_size, int64_t epoch,
                                        const std::function<bool(int64_t)>& fails) {
  const EpochSampler sampler({.dataset_size = dataset_size, .batch_size = o.batch_size, .shuffle = o.shuffle,
                              .drop_last = o.drop_last, .pad_to_equal = o.pad_to_equal,
                              .repeated_augment = o.repeated_augment, .seed = o.seed, .rank = o.rank,
                              .world_size = o.world_size});
  const std::vector<SampleRef> plan = sampler.epoch_samples(epoch);
  std::vector<SampleRef> out;
  const size_t n = plan.size();
  for (size_t j = 0; j < n; ++j) {
    size_t q = j;
    while (fails(plan[q].index)) q = (q + 1) % n;
    out.push_back(plan[q]);
  }
  return out;
}

// Every row of `run` is the sample the rule picks, made with its own stream by `ds.get`.
void check_rows(const Run& run, const Dataset& ds, const std::vector<SampleRef>& want, const LoaderOptions& o,
                int64_t epoch, int64_t skip = 0) {
  size_t pos = size_t(skip * o.batch_size);
  for (const Batch& b : run.batches)
    for (int64_t r = 0; r < int64_t(b.indices.size()); ++r, ++pos) {
      REQUIRE(pos < want.size());
      const SampleRef s = want[pos];
      CHECK(b.indices[size_t(r)] == s.index);
      Generator g(o.seed, sample_stream(epoch, s.index, s.occurrence));
      const Sample ref = ds.get(s.index, g);
      CHECK(b.labels.data<int64_t>()[r] == ref.label);
      if (o.pad) {
        const Tensor valid = b.images.select(0, r).narrow(1, 0, ref.image.size(1)).narrow(2, 0, ref.image.size(2));
        CHECK(same(valid, ref.image));
      } else {
        CHECK(same(b.images.select(0, r), ref.image));
      }
      if (ref.label_map.defined()) CHECK(same(b.label_maps.select(0, r), ref.label_map));
    }
  CHECK(pos == want.size());
}

}  // namespace

TEST_CASE("on_bad_sample names parse; anything else is refused naming the choices") {
  CHECK(parse_on_bad_sample("stop") == OnBadSample::stop);
  CHECK(parse_on_bad_sample("skip") == OnBadSample::skip);
  CHECK(std::string(on_bad_sample_name(OnBadSample::skip)) == "skip");
  CHECK(error_of([] { parse_on_bad_sample("ignore"); }) == "on_bad_sample: expected \"stop\" or \"skip\", got \"ignore\"");
  auto ds = std::make_shared<Flaky>(4, std::set<int64_t>{}, Kind::known_shape);
  CHECK(error_of([&] { Loader(ds, {.max_bad_fraction = 1.5}); }).find("max_bad_fraction must be in [0, 1]") !=
        std::string::npos);
}

TEST_CASE("stop (the default): the epoch ends with the error naming the file and the index") {
  auto ds = std::make_shared<Flaky>(10, std::set<int64_t>{7}, Kind::known_shape);
  for (int workers : {0, 2}) {
    Loader loader(ds, {.batch_size = 4, .shuffle = false, .workers = workers});
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    const std::string e = error_of([&] { loader.next(); });
    CHECK(e == "Loader: sample 7 of flaky (epoch 0, batch 1) failed: img7.jpg: corrupt or truncated JPEG");
    CHECK_FALSE(loader.next().has_value());
    CHECK(loader.bad_samples() == 0);
  }
}

TEST_CASE("skip: the next sample of the order that loads fills the row, for every loader path and 0 / 1 / 3 workers") {
  const std::set<int64_t> bad = {2, 5, 6, 13};  // 5 and 6 in a row: 5's substitute skips 6
  const auto fails = [&](int64_t i) { return bad.count(i) > 0; };
  for (Kind kind : {Kind::known_shape, Kind::first_sample, Kind::padded, Kind::dense}) {
    CAPTURE(int(kind));
    auto ds = std::make_shared<Flaky>(23, bad, kind);
    LoaderOptions o{.batch_size = 4, .shuffle = true, .seed = 9, .on_bad_sample = OnBadSample::skip,
                    .max_bad_fraction = 0.2};
    if (kind == Kind::padded) o.pad = PadOptions{.size_divisor = 4};
    const std::vector<SampleRef> want = substituted_plan(o, 23, 2, fails);
    std::vector<Run> runs;
    for (int workers : {0, 1, 3}) {
      o.workers = workers;
      runs.push_back(run_epoch(ds, o, 2));
      const Run& r = runs.back();
      CHECK(r.bad == 4);
      CHECK(r.epoch_bad == 4);
      int64_t per_batch = 0;
      for (const Batch& b : r.batches) per_batch += b.bad_samples;
      CHECK(per_batch == 4);
      check_rows(r, *ds, want, o, 2);
      // Reported once each, in batch order, whatever the worker count.
      REQUIRE(r.logged.size() == 4);
      CHECK(r.logged == runs.front().logged);
      for (const std::string& m : r.logged) {
        CHECK(m.find("corrupt or truncated JPEG (skipped: data.on_bad_sample = skip; its row holds sample ") !=
              std::string::npos);
        CHECK(m.rfind("Loader: sample ", 0) == 0);
      }
    }
    // Resume at batch 3: exactly the uninterrupted epoch's batches 3.., counting only those.
    o.workers = 2;
    const Run resumed = run_epoch(ds, o, 2, 3);
    check_rows(resumed, *ds, want, o, 2, 3);
    int64_t after = 0;
    for (size_t b = 3; b < runs[0].batches.size(); ++b) after += runs[0].batches[b].bad_samples;
    CHECK(resumed.bad == after);
  }
}

TEST_CASE("skip: reported once per index for the loader's life, counted every epoch; the last position wraps") {
  auto ds = std::make_shared<Flaky>(6, std::set<int64_t>{5}, Kind::known_shape);
  std::vector<std::string> logged;
  LoaderOptions o{.batch_size = 2, .shuffle = false, .on_bad_sample = OnBadSample::skip, .max_bad_fraction = 0.5};
  o.log = [&](const std::string& m) { logged.push_back(m); };
  Loader loader(ds, o);
  for (int64_t e = 0; e < 3; ++e) {
    loader.start_epoch(e);
    std::vector<Batch> bs;
    while (auto b = loader.next()) bs.push_back(*b);
    REQUIRE(bs.size() == 3);
    CHECK(bs[2].indices == std::vector<int64_t>{4, 0});  // 5 is last: its substitute is position 0
    CHECK(loader.epoch_bad_samples() == 1);
    CHECK(loader.bad_samples() == e + 1);
  }
  REQUIRE(logged.size() == 1);
  CHECK(logged[0] == "Loader: sample 5 of flaky (epoch 0, batch 2) failed: img5.jpg: corrupt or truncated JPEG "
                     "(skipped: data.on_bad_sample = skip; its row holds sample 0)");
  CHECK(loader.describe().find("bad samples skipped (up to 3 per epoch)") != std::string::npos);
}

TEST_CASE("skip still stops: past max_bad_fraction, a batch of failures, no substitute that loads") {
  LoaderOptions o{.batch_size = 4, .shuffle = false, .on_bad_sample = OnBadSample::skip, .log = [](const std::string&) {}};
  {  // 100 samples, 1% allowed: the second failure stops, at the batch that holds it
    auto ds = std::make_shared<Flaky>(100, std::set<int64_t>{10, 50}, Kind::known_shape);
    Loader loader(ds, o);
    loader.start_epoch(0);
    int64_t got = 0;
    std::string e;
    try {
      while (loader.next()) ++got;
    } catch (const std::exception& x) {
      e = x.what();
    }
    CHECK(got == 12);  // batches 0 .. 11; batch 12 holds sample 50
    CHECK(e.find("Loader: 2 samples of epoch 0 failed by batch 12, more than the 1 allowed (max_bad_fraction "
                 "0.010000 of the 100 samples per epoch, at least 1)") == 0);
    CHECK(e.find("The last: Loader: sample 50 of flaky") != std::string::npos);
    CHECK_FALSE(loader.next().has_value());
  }
  {  // a whole batch fails
    auto ds = std::make_shared<Flaky>(12, std::set<int64_t>{4, 5, 6, 7}, Kind::known_shape);
    LoaderOptions all = o;
    all.max_bad_fraction = 1.0;
    Loader loader(ds, all);
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    CHECK(error_of([&] { loader.next(); }).find("Loader: every sample of batch 1 of epoch 0 of flaky failed") == 0);
  }
  {  // more failures in a row than allowed: no substitute within reach
    auto ds = std::make_shared<Flaky>(100, std::set<int64_t>{1, 2}, Kind::known_shape);
    Loader loader(ds, o);
    loader.start_epoch(0);
    const std::string e = error_of([&] { loader.next(); });
    CHECK(e.find("Loader: sample 1 of flaky (epoch 0, batch 0) failed: img1.jpg") == 0);
    CHECK(e.find("and the 1 samples after it in the epoch's order, tried in turn as its substitute") != std::string::npos);
  }
}

// ---- real files with truncated bytes ----------------------------------------------------

namespace {

// The first `keep` bytes of `path`, written back.
void truncate_file(const fs::path& path, size_t keep) {
  std::string b;
  {
    std::ifstream in(path, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(b.size() > keep);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << b.substr(0, keep);
}

std::vector<uint8_t> pattern(int h, int w, int channels, int k) {
  std::vector<uint8_t> v(size_t(h * w * channels));
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t((i * 7 + size_t(k) * 31) % 251);
  return v;
}

struct TempDir {
  fs::path dir;
  explicit TempDir(const std::string& tag) : dir(fs::temp_directory_path() / ("rv_badsample_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("ImageFolder with a truncated JPEG: stop names the file; skip trains through, counts 1, substitute by hand") {
  if (!have_jpeg_encoder() || !have_jpeg_decoder()) {
    MESSAGE("skipped: built without a JPEG encoder or decoder");
    return;
  }
  TempDir t("imagefolder");
  const fs::path root = t.dir / "train";
  for (int k = 0; k < 10; ++k) {
    const std::vector<uint8_t> rgb = pattern(24, 20, 3, k);
    fs::create_directories(root / ("c" + std::to_string(k % 2)));
    std::ofstream(root / ("c" + std::to_string(k % 2)) / ("im" + std::to_string(k) + ".jpg"), std::ios::binary)
        << encode_rgb_jpeg(rgb.data(), 24, 20);
  }
  const fs::path broken = root / "c1" / "im3.jpg";
  truncate_file(broken, size_t(fs::file_size(broken)) * 2 / 3);  // the headers whole, the scan cut
  ImageFolderOptions io;
  io.root = root.string();
  io.cache_dir = (t.dir / "cache").string();
  io.train_tf.size = 16;
  auto ds = std::make_shared<ImageFolder>(io);
  int64_t bad_index = -1;
  for (int64_t i = 0; i < ds->size(); ++i)
    if (ds->path(i) == broken.string()) bad_index = i;
  REQUIRE(bad_index >= 0);

  LoaderOptions o{.batch_size = 3, .shuffle = true, .drop_last = true, .seed = 4};
  {  // stop: the error names the file
    Loader loader(ds, o);
    loader.start_epoch(1);
    const std::string e = error_of([&] { while (loader.next()) {} });
    CHECK(e.find("Loader: sample " + std::to_string(bad_index) + " of imagefolder") == 0);
    INFO(e);
    CHECK(e.find(broken.string() + ": corrupt or truncated JPEG (Premature end of JPEG file)") != std::string::npos);
  }
  o.on_bad_sample = OnBadSample::skip;
  o.max_bad_fraction = 0.2;
  const std::vector<SampleRef> want = substituted_plan(o, ds->size(), 1, [&](int64_t i) { return i == bad_index; });
  std::vector<Run> runs;
  for (int workers : {0, 1, 3}) {
    o.workers = workers;
    runs.push_back(run_epoch(ds, o, 1));
    const Run& r = runs.back();
    CHECK(r.batches.size() == 3);
    CHECK(r.bad == 1);
    REQUIRE(r.logged.size() == 1);
    INFO(r.logged[0]);
    CHECK(r.logged[0].find(broken.string() + ": corrupt or truncated JPEG (Premature end of JPEG file)") != std::string::npos);
    check_rows(r, *ds, want, o, 1);
  }
}

TEST_CASE("CocoDetectionDataset with a truncated JPEG, padded batches: stop names the file; skip substitutes") {
  if (!have_jpeg_encoder() || !have_jpeg_decoder()) {
    MESSAGE("skipped: built without a JPEG encoder or decoder");
    return;
  }
  TempDir t("coco");
  auto [items, labels] = shape_items(40, 3);
  const SceneGenerator gen(items, labels, {.size = 64, .min_item = 12});
  write_scene_sets(gen, gen, {.out_dir = t.dir.string(), .train_images = 6, .val_images = 1, .seed = 2});
  auto ds = std::make_shared<CocoDetectionDataset>(CocoDetectionOptions{
      .root = (t.dir / "coco").string(),
      .split = "train",
      .train = true,
      .transform = {.augment = DetAugment::resize_flip, .long_side = 80, .short_side = 48}});
  REQUIRE(ds->size() >= 4);
  const int64_t bad_index = 2;
  truncate_file(ds->image_path(bad_index), 300);
  LoaderOptions o{.batch_size = 2, .shuffle = true, .seed = 1, .pad = PadOptions{.size_divisor = 16}};
  {
    Loader loader(ds, o);
    loader.start_epoch(0);
    const std::string e = error_of([&] { while (loader.next()) {} });
    CHECK(e.find(ds->image_path(bad_index)) != std::string::npos);
  }
  o.on_bad_sample = OnBadSample::skip;
  o.max_bad_fraction = 0.5;
  const std::vector<SampleRef> want = substituted_plan(o, ds->size(), 0, [&](int64_t i) { return i == bad_index; });
  for (int workers : {0, 3}) {
    o.workers = workers;
    const Run r = run_epoch(ds, o, 0);
    CHECK(r.bad == 1);
    check_rows(r, *ds, want, o, 0);
  }
}

TEST_CASE("SegmentationDataset: a truncated image and a truncated label map are each skipped and counted") {
  TempDir t("seg");
  const fs::path root = t.dir;
  for (const char* split : {"training", "validation"}) {
    fs::create_directories(root / "images" / split);
    fs::create_directories(root / "annotations" / split);
  }
  for (int k = 0; k < 8; ++k) {
    const std::vector<uint8_t> img = pattern(30, 26, 1, k), lab = pattern(30, 26, 1, k + 1);
    std::vector<uint8_t> raw(lab.size());
    for (size_t i = 0; i < lab.size(); ++i) raw[i] = uint8_t(lab[i] % 5);
    const std::string stem = "tr" + std::to_string(k);
    std::ofstream(root / "images" / "training" / (stem + ".jpg"), std::ios::binary) << encode_grey_png(img.data(), 30, 26);
    std::ofstream(root / "annotations" / "training" / (stem + ".png"), std::ios::binary) << encode_grey_png(raw.data(), 30, 26);
  }
  auto ds = SegmentationDataset::open(root.string(), "training", SegTransform::for_size(16, true),
                                     {.class_names = {"a", "b", "c", "d"}});
  REQUIRE(ds->size() == 8);
  truncate_file(ds->files().image_path(1), 60);
  truncate_file(ds->files().annotation_path(5), 60);
  LoaderOptions o{.batch_size = 3, .shuffle = true, .seed = 6};
  {
    Loader loader(ds, o);
    loader.start_epoch(0);
    const std::string e = error_of([&] { while (loader.next()) {} });
    CHECK((e.find(ds->files().image_path(1)) != std::string::npos ||
           e.find(ds->files().annotation_path(5)) != std::string::npos));
  }
  o.on_bad_sample = OnBadSample::skip;
  o.max_bad_fraction = 0.25;
  const std::vector<SampleRef> want = substituted_plan(o, 8, 0, [](int64_t i) { return i == 1 || i == 5; });
  for (int workers : {0, 3}) {
    o.workers = workers;
    const Run r = run_epoch(ds, o, 0);
    CHECK(r.bad == 2);
    REQUIRE(r.logged.size() == 2);
    const std::string both = r.logged[0] + r.logged[1];
    CHECK(both.find(ds->files().image_path(1)) != std::string::npos);
    CHECK(both.find(ds->files().annotation_path(5)) != std::string::npos);
    check_rows(r, *ds, want, o, 0);
  }
}
