// SegmentationDataset (data/seg_dataset.h) and the loader's dense-label batches (Batch::label_maps):
// train samples (3, S, S) f32 + (S, S) u8 with image and labels moved together (checked pixel by
// pixel on a set whose grey value encodes the label), padding 0 / 255, eval samples at the resized
// image size with the label map at the original size, batches identical for 0, 1 and 3 workers
// and equal to get() with the loader's per-sample generator, and the generic get()-only path.
//
// The tiny set is written here: grey PNG bytes under .jpg names (the decoder sniffs the format),
// so image values come back exactly. Image k's pixel in block (y / 8, x / 8) has raw label
// (by + bx + k) % 5 (0 = "other") and grey value 20 * raw + 5.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "data/image_encode.h"
#include "data/loader.h"
#include "data/random_draws.h"
#include "data/sampler.h"
#include "data/seg_dataset.h"
#include "engine/ops/loss.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kClasses = {"a", "b", "c", "d"};  // raw 1..4 -> 0..3

struct TinySet {
  fs::path root;
  explicit TinySet(const std::string& tag) : root(fs::temp_directory_path() / ("rv_segds_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(root);
    // The first training image (sorted) is 40 x 56: the alignment test resizes it by exactly 1.
    const std::pair<int, int> train[] = {{40, 56}, {48, 48}, {33, 61}, {56, 40}, {45, 50}};
    const std::pair<int, int> val[] = {{40, 56}, {36, 30}, {50, 44}};
    write("training", "tr", train, 5);
    write("validation", "va", val, 3);
  }
  ~TinySet() { fs::remove_all(root); }

  void write(const std::string& split, const std::string& prefix, const std::pair<int, int>* sizes, int n) {
    fs::create_directories(root / "images" / split);
    fs::create_directories(root / "annotations" / split);
    for (int k = 0; k < n; ++k) {
      const auto [h, w] = sizes[k];
      std::vector<uint8_t> img(size_t(h * w)), lab(size_t(h * w));
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const int raw = (y / 8 + x / 8 + k) % 5;
          lab[size_t(y * w + x)] = uint8_t(raw);
          img[size_t(y * w + x)] = uint8_t(20 * raw + 5);
        }
      const std::string stem = prefix + std::to_string(k);
      std::ofstream(root / "images" / split / (stem + ".jpg"), std::ios::binary) << encode_grey_png(img.data(), h, w);
      std::ofstream(root / "annotations" / split / (stem + ".png"), std::ios::binary) << encode_grey_png(lab.data(), h, w);
    }
  }
};

bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  const size_t bytes = size_t(x.numel()) * (x.dtype() == DType::u8 ? 1 : 4);
  return std::memcmp(x.raw_data(), y.raw_data(), bytes) == 0;
}

std::vector<Batch> epoch_batches(std::shared_ptr<const Dataset> ds, LoaderOptions opt, int64_t epoch) {
  Loader loader(std::move(ds), std::move(opt));
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

}  // namespace

TEST_CASE("segmentation train samples: image and labels cropped and flipped together, padded 0 / 255") {
  TinySet set("train");
  SegTransform tf = SegTransform::for_size(32, true);
  tf.scale = {56, 40};
  tf.ratio_lo = tf.ratio_hi = 1.0;  // image 0 (40 x 56) keeps its size
  tf.photometric = false;           // grey values stay 20 * raw + 5
  const auto ds = SegmentationDataset::open(set.root.string(), "training", tf, {.class_names = kClasses});
  REQUIRE(ds->size() == 5);
  CHECK(ds->num_classes() == 4);
  CHECK(ds->describe().find("reduce_zero_label") != std::string::npos);
  CHECK(ds->describe().find("crop 32 (cat_max_ratio 0.75)") != std::string::npos);
  int flipped = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    Generator g(seed, 3);
    const auto [img, lab] = ds->transformed(0, g);
    REQUIRE(img.height == 32);
    REQUIRE(img.width == 32);
    REQUIRE(lab.height == 32);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const int l = lab.at(y, x, 0), v = img.at(y, x, 0);
        CHECK(v == (l == 255 ? 5 : 20 * (l + 1) + 5));  // 255 here is raw 0 ("other")
      }
    // The crop is a window of the 40 x 56 block pattern: find its offset, flipped or not.
    bool found = false;
    for (int top = 0; top <= 8 && !found; ++top)
      for (int left = 0; left <= 24 && !found; ++left)
        for (int flip = 0; flip < 2 && !found; ++flip) {
          bool all = true;
          for (int y = 0; y < 32 && all; ++y)
            for (int x = 0; x < 32 && all; ++x) {
              const int sx = left + (flip ? 31 - x : x), raw = ((top + y) / 8 + sx / 8) % 5;
              all = lab.at(y, x, 0) == (raw == 0 ? 255 : raw - 1);
            }
          if (all) found = true, flipped += flip;
        }
    CHECK_MESSAGE(found, "seed " << seed << ": the label crop is no window of the file");
    // get(): the same draws, normalised; a sample is a function of the generator's state.
    Generator g2(seed, 3);
    const Sample s = ds->get(0, g2);
    CHECK(s.image.shape() == Shape{3, 32, 32});
    CHECK(s.label_map.shape() == Shape{32, 32});
    CHECK(s.label_map.dtype() == DType::u8);
    CHECK(std::memcmp(s.label_map.data<uint8_t>(), lab.pixels.data(), 32 * 32) == 0);
    CHECK(s.image.data<float>()[0] == (float(img.at(0, 0, 0)) - kSegMean[0]) / kSegStd[0]);
  }
  CHECK(flipped > 0);
  CHECK(flipped < 12);
  // Images smaller than the crop after resizing are padded: 0 in the image, 255 in the labels.
  SegTransform small = SegTransform::for_size(64, true);
  small.scale = {64, 16};
  const auto ds2 = SegmentationDataset::open(set.root.string(), "training", small, {.class_names = kClasses});
  Generator g(1, 0);
  const Sample s = ds2->get(1, g);  // 48 x 48 -> at most 32 x 32 (ratio <= 2)
  CHECK(s.label_map.data<uint8_t>()[64 * 64 - 1] == 255);
  CHECK(s.image.data<float>()[64 * 64 - 1] == 0.f);
  CHECK(ds2->sample_shape({}) == Shape{3, 64, 64});
  CHECK(ds2->label_map_shape({}) == Shape{64, 64});
  CHECK(ds2->sample_shape({16, 16}).empty());  // no resizing on request
}

TEST_CASE("segmentation batches: images (B, 3, S, S) f32, label maps (B, S, S) u8, the same for 0, 1, 3 workers") {
  TinySet set("loader");
  const auto ds = SegmentationDataset::open(set.root.string(), "training", SegTransform::for_size(24, true),
                                            {.class_names = kClasses});
  const uint64_t seed = 17;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3})
    runs.push_back(epoch_batches(ds, {.batch_size = 2, .shuffle = true, .workers = workers, .seed = seed}, 2));
  REQUIRE(runs[0].size() == 3);
  for (const auto& run : runs) {
    REQUIRE(run.size() == runs[0].size());
    for (size_t b = 0; b < run.size(); ++b) {
      CHECK(run[b].indices == runs[0][b].indices);
      CHECK(same(run[b].images, runs[0][b].images));
      CHECK(same(run[b].label_maps, runs[0][b].label_maps));
    }
  }
  for (const Batch& b : runs[0]) {
    const int64_t B = int64_t(b.indices.size());
    CHECK(b.images.shape() == Shape{B, 3, 24, 24});
    CHECK(b.label_maps.shape() == Shape{B, 24, 24});
    CHECK(b.label_maps.dtype() == DType::u8);
    for (int64_t r = 0; r < B; ++r) {
      Generator g(seed, sample_stream(2, b.indices[size_t(r)], 0));
      const Sample s = ds->get(b.indices[size_t(r)], g);
      CHECK(same(b.images.select(0, r), s.image));
      CHECK(same(b.label_maps.select(0, r), s.label_map));
      const uint8_t* l = s.label_map.data<uint8_t>();
      for (int64_t i = 0; i < 24 * 24; ++i) CHECK((l[i] < 4 || l[i] == 255));
    }
  }
  // The loss takes the uint8 label maps as they are: uniform logits give log(4) per counted pixel.
  const Batch& b0 = runs[0][0];
  const Tensor loss = cross_entropy(zeros({2, 4, 24, 24}), b0.label_maps, {.ignore_index = 255});
  CHECK(loss.item() == doctest::Approx(std::log(4.0)).epsilon(1e-6));
  // Another epoch, other crops.
  const auto e3 = epoch_batches(ds, {.batch_size = 2, .shuffle = true, .workers = 0, .seed = seed}, 3);
  bool differ = false;
  for (size_t b = 0; b < e3.size(); ++b) differ |= !same(e3[b].label_maps, runs[0][b].label_maps);
  CHECK(differ);
}

TEST_CASE("segmentation eval: image resized keeping the ratio, label map at the original size") {
  TinySet set("eval");
  const auto ds = SegmentationDataset::open(set.root.string(), "validation", SegTransform::for_size(32, false),
                                            {.class_names = kClasses});
  CHECK(ds->sample_shape({}).empty());
  CHECK(ds->describe().find("eval") != std::string::npos);
  const auto batches = epoch_batches(ds, {.batch_size = 1, .shuffle = false, .workers = 2}, 0);
  REQUIRE(batches.size() == 3);
  // (128, 32): 40 x 56 -> factor min(128 / 56, 32 / 40) = 0.8 -> 32 x 45; 36 x 30 -> 32 / 30 -> 38 x 32;
  // 50 x 44 -> 32 / 44 -> 36 x 32.
  const Shape images[3] = {{1, 3, 32, 45}, {1, 3, 38, 32}, {1, 3, 36, 32}};
  const Shape labels[3] = {{1, 40, 56}, {1, 36, 30}, {1, 50, 44}};
  for (int i = 0; i < 3; ++i) {
    CHECK(batches[size_t(i)].images.shape() == images[i]);
    CHECK(batches[size_t(i)].label_maps.shape() == labels[i]);
    const Image want = ds->files().read_labels(i);
    CHECK(std::memcmp(batches[size_t(i)].label_maps.data<uint8_t>(), want.pixels.data(), want.pixels.size()) == 0);
  }
  // Two images of different sizes cannot share a batch: the error names the sample and the shapes.
  CHECK_THROWS_WITH(epoch_batches(ds, {.batch_size = 2, .shuffle = false}, 0),
                    doctest::Contains("all samples of a batch must have the same shapes"));
}

namespace {

// Only get(), with a label map (the loader's generic dense path): sample i is i-filled, labels i;
// sample `odd` has a label map of another size.
class PlainDense : public Dataset {
 public:
  explicit PlainDense(int64_t odd = -1) : odd_(odd) {}
  int64_t size() const override { return 5; }
  int64_t num_classes() const override { return 1; }
  bool has_label_maps() const override { return true; }
  std::string describe() const override { return "plain dense"; }
  Sample get(int64_t i, Generator& gen) const override {
    Sample s;
    s.image = full({1, 2, 3}, double(i) + double(draw_int(gen, 0, 0)));
    s.label_map = full({i == odd_ ? 3 : 2, 3}, double(i), DType::u8);
    return s;
  }

 private:
  int64_t odd_;
};

}  // namespace

TEST_CASE("loader, dense labels from a get()-only data set: shapes from the first sample, mismatches refused") {
  const auto b = epoch_batches(std::make_shared<PlainDense>(), {.batch_size = 3, .shuffle = false, .workers = 1}, 0);
  REQUIRE(b.size() == 2);
  CHECK(b[0].label_maps.shape() == Shape{3, 2, 3});
  CHECK(b[1].label_maps.shape() == Shape{2, 2, 3});
  CHECK(b[1].label_maps.data<uint8_t>()[6] == 4);  // row 1 of batch 1 is sample 4
  CHECK(b[1].images.data<float>()[6] == 4.f);
  CHECK_THROWS_WITH(epoch_batches(std::make_shared<PlainDense>(2), {.batch_size = 3, .shuffle = false}, 0),
                    doctest::Contains("has label map [3, 3] uint8 but its batch row is [2, 3] uint8"));
  // A data set without label maps leaves Batch::label_maps undefined.
  class NoDense : public PlainDense {
    bool has_label_maps() const override { return false; }
  };
  const auto n = epoch_batches(std::make_shared<NoDense>(), {.batch_size = 5, .shuffle = false}, 0);
  CHECK_FALSE(n[0].label_maps.defined());
}
