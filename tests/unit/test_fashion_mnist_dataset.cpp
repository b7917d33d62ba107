// FashionMnistDataset (data/fashion_mnist_dataset.h): the evaluation and training pipelines
// against their steps composed by hand (and the eval resize against engine interpolate),
// determinism per generator, multi-resolution requests, errors, and the real files (when
// dataset-fashion-mnist is installed): sizes, the normalisation constants, a loader epoch.
#include <cmath>
#include <cstring>

#include "data/fashion_mnist_dataset.h"
#include "data/loader.h"
#include "data/random_draws.h"
#include "engine/ops/interpolate.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// N images of H x W with varied pixels (a gradient plus the index), labels i % 10.
std::shared_ptr<FashionMnistDataset> synthetic(int64_t n, FashionMnistTransform tf, int64_t H = 28, int64_t W = 28) {
  Tensor images = empty({n, H, W}, DType::u8);
  uint8_t* p = images.data<uint8_t>();
  for (int64_t i = 0; i < n * H * W; ++i) p[i] = uint8_t((i * 37 + (i / (H * W)) * 11) % 256);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i % 10);
  return std::make_shared<FashionMnistDataset>(images, from_vector(labels, {n}), tf, "synthetic");
}

Tensor as_float01(const FashionMnistDataset& ds, int64_t i, int64_t H = 28, int64_t W = 28) {
  Tensor img = empty({1, H, W});
  for (int64_t k = 0; k < H * W; ++k)
    img.data<float>()[k] = float(((i * H * W + k) * 37 + i * 11) % 256) / 255.0f;
  (void)ds;
  return img;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), size_t(a.numel()) * 4) == 0;
}

}  // namespace

TEST_CASE("FashionMnistDataset: evaluation = antialiased resize of the whole image, then normalise") {
  for (int64_t R : {28, 32, 17}) {
    FashionMnistTransform tf{.resolution = R};
    auto ds = synthetic(5, tf);
    Generator g(0, 0);
    Sample s = ds->get(3, g);
    CHECK(s.label == 3);
    CHECK(g.offset() == 0);  // evaluation draws nothing
    Tensor ref = interpolate(as_float01(*ds, 3).unsqueeze(0), {.size = {R, R}, .mode = "bicubic", .antialias = true})
                     .squeeze(0);
    if (R == 28) ref = as_float01(*ds, 3);  // same size: untouched
    std::vector<float> v = ref.contiguous().to_vector<float>();
    for (float& x : v) x = (x - 0.2860f) / 0.3530f;
    RV_EXPECT_CLOSE(s.image, from_vector(v, {1, R, R}), .rtol = 0, .atol = 0);
    CHECK(ds->describe() == "synthetic, 5 images, 28x28 -> " + std::to_string(R) + "x" + std::to_string(R));
  }
}

TEST_CASE("FashionMnistDataset: training = crop box, resize, flip, normalise, erase, in that draw order") {
  FashionMnistTransform tf{.resolution = 20,
                           .train = true,
                           .erase = {.probability = 0.5},
                           .erase_mode = chw::EraseMode::per_pixel};
  auto ds = synthetic(4, tf);
  int flips = 0, erased = 0;
  for (uint64_t stream = 0; stream < 40; ++stream) {
    Generator g(5, stream);
    Sample s = ds->get(2, g);
    // The same steps by hand from the same stream.
    Generator h(5, stream);
    CropBox box = random_resized_crop_params(28, 28, h, {.scale_min = 0.35, .scale_max = 1.0});
    Tensor ref = chw::resized_crop(as_float01(*ds, 2), box, 20, 20, tf.resize);
    if (draw_bernoulli(h, 0.5)) chw::hflip_(ref), ++flips;
    chw::normalize_(ref, {0.2860}, {0.3530});
    if (auto e = random_erasing_params(20, 20, h, tf.erase)) chw::erase_(ref, *e, chw::EraseMode::per_pixel, h), ++erased;
    CHECK(same_bits(s.image, ref));
    CHECK(g.offset() == h.offset());
    // Determinism: the same stream, the same pixels.
    Generator again(5, stream);
    CHECK(same_bits(ds->get(2, again).image, s.image));
  }
  CHECK(flips > 5);
  CHECK(flips < 35);
  CHECK(erased > 3);
  // Different streams give different crops.
  Generator a(5, 1), b(5, 2);
  CHECK_FALSE(same_bits(ds->get(0, a).image, ds->get(0, b).image));
}

TEST_CASE("FashionMnistDataset: a loader request sets the output size; errors name what is wrong") {
  auto ds = synthetic(6, {.resolution = 16, .train = true});
  CHECK(ds->sample_shape({}) == Shape{1, 16, 16});
  CHECK(ds->sample_shape({24, 24}) == Shape{1, 24, 24});
  Tensor row = empty({1, 24, 24});
  Generator g(1, 1);
  CHECK(ds->get_into(5, g, {24, 24}, row) == 5);
  CHECK_THROWS_WITH_AS(ds->get_into(5, g, {24, 24}, empty({1, 16, 16})),
                       "FashionMnistDataset::get_into: out must be [1, 24, 24], got [1, 16, 16]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(ds->get(6, g), "FashionMnistDataset::get: index 6 is outside 0 .. 5", std::out_of_range);
  // Through the loader with two sizes per epoch.
  Loader l(ds, {.batch_size = 2, .workers = 2, .seed = 3, .resolutions = {12, 20}});
  l.start_epoch(0);
  while (auto b = l.next()) {
    const int64_t r = batch_resolution({12, 20}, 3, 0, b->step);
    CHECK(b->images.shape() == Shape{2, 1, r, r});
  }
  CHECK_THROWS_AS(FashionMnistDataset(zeros({3, 4, 4}), zeros({3}, DType::i64), {}, "x"), std::invalid_argument);
  CHECK_THROWS_AS(FashionMnistDataset(zeros({3, 4, 4}, DType::u8), zeros({2}, DType::i64), {}, "x"),
                  std::invalid_argument);
  CHECK_THROWS_WITH_AS(FashionMnistDataset(zeros({1, 4, 4}, DType::u8), full({1}, 10, DType::i64), {}, "x"),
                       "FashionMnistDataset: label 10 of image 0 is outside 0..9", std::invalid_argument);
  CHECK_THROWS_AS(FashionMnistDataset(zeros({1, 4, 4}, DType::u8), zeros({1}, DType::i64), {.resolution = 0}, "x"),
                  std::invalid_argument);
}

TEST_CASE("FashionMnistDataset: augmented batches are bit for bit the same for 0 and 3 workers, and on resume") {
  auto ds = synthetic(50, {.resolution = 24, .train = true, .erase = {.probability = 0.5}});
  auto epoch = [&](int workers, int64_t skip) {
    Loader l(ds, {.batch_size = 8, .shuffle = true, .workers = workers, .seed = 12, .resolutions = {16, 24, 32}});
    l.start_epoch(4, skip);
    std::vector<Batch> out;
    while (auto b = l.next()) out.push_back(std::move(*b));
    return out;
  };
  std::vector<Batch> ref = epoch(0, 0), threaded = epoch(3, 0), resumed = epoch(3, 2);
  REQUIRE(ref.size() == 7);
  REQUIRE(threaded.size() == 7);
  REQUIRE(resumed.size() == 5);
  for (size_t i = 0; i < ref.size(); ++i) {
    CHECK(same_bits(threaded[i].images, ref[i].images));
    CHECK(threaded[i].indices == ref[i].indices);
    if (i >= 2) CHECK(same_bits(resumed[i - 2].images, ref[i].images));
  }
}

TEST_CASE("FashionMnistDataset: Debian's files, when installed (constants, an epoch through the loader)") {
  const std::string dir = FashionMnist::kDebianDir;
  if (FashionMnist::find_file(dir, "t10k-labels-idx1-ubyte").empty()) {
    MESSAGE("skipped: " << dir << " has no Fashion-MNIST files (apt-get install dataset-fashion-mnist)");
    return;
  }
  std::shared_ptr<FashionMnistDataset> train;
  try {
    train = FashionMnistDataset::open(dir, FashionMnist::Split::train, {.resolution = 28});
  } catch (const std::exception& e) {  // a build without zlib cannot read the .gz files
    MESSAGE("skipped: " << e.what());
    return;
  }
  CHECK(train->size() == 60000);
  CHECK(train->describe() == "fashion-mnist train, 60000 images, 28x28 -> 28x28");
  // The normalisation constants are the training pixels' mean and std (in [0, 1]).
  FashionMnist raw = FashionMnist::open(dir, FashionMnist::Split::train);
  const uint8_t* p = raw.images().data<uint8_t>();
  double sum = 0, sq = 0;
  const int64_t n = raw.images().numel();
  for (int64_t i = 0; i < n; ++i) sum += p[i] / 255.0, sq += (p[i] / 255.0) * (p[i] / 255.0);
  const double mean = sum / double(n), std = std::sqrt(sq / double(n) - mean * mean);
  CHECK(std::abs(mean - 0.2860) < 5e-5);
  CHECK(std::abs(std - 0.3530) < 5e-5);
  // The test split at 32x32 through the loader, one epoch: every image once, labels as stored.
  auto test = FashionMnistDataset::open(dir, FashionMnist::Split::test, {.resolution = 32});
  FashionMnist raw_test = FashionMnist::open(dir, FashionMnist::Split::test);
  Loader l(test, {.batch_size = 500, .shuffle = false, .workers = 2});
  l.start_epoch(0);
  int64_t seen = 0;
  double pixel_sum = 0;
  while (auto b = l.next()) {
    CHECK(b->images.shape() == Shape{b->labels.numel(), 1, 32, 32});
    for (int64_t r = 0; r < b->labels.numel(); ++r) {
      CHECK(b->indices[size_t(r)] == seen + r);
      CHECK(b->labels.data<int64_t>()[r] == raw_test.labels().data<int64_t>()[seen + r]);
    }
    const float* q = b->images.data<float>();
    for (int64_t i = 0; i < b->images.numel(); ++i) pixel_sum += q[i];
    seen += b->labels.numel();
  }
  CHECK(seen == 10000);
  // The test split's pixels are close to the training statistics: the normalised mean is small.
  CHECK(std::abs(pixel_sum / (10000.0 * 32 * 32)) < 0.05);
}
