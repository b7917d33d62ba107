// The COCO detection data set (data/coco_detection.h), its transforms (data/det_augment.h) and
// its padded batches (data/pad_batch.h, Loader with LoaderOptions::pad), on a tiny scene set that
// the test writes with the scene generator (data/scene_files.h): sample counts per split and
// filter, boxes inside the image after every transform, boxes mapped back to the annotation,
// flip twice = identity, LSJ draws within their ranges, padding and valid sizes, the same
// batches for any worker count and on resume, and errors that name the file.
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "data/coco_detection.h"
#include "data/image_encode.h"
#include "data/loader.h"
#include "data/pad_batch.h"
#include "data/random_draws.h"
#include "data/sampler.h"
#include "data/scene_files.h"
#include "data/scenes.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

// The scene files are JPEGs: without stb_image_write (libstb-dev) there is nothing to read.
#define RV_NEED_JPEG_ENCODER()                                       \
  if (!have_jpeg_encoder()) {                                        \
    MESSAGE("skipped: built without stb_image_write (no JPEG encoder)"); \
    return;                                                          \
  }

namespace {

// The scene set, written once per process: 24 train and 8 val scenes of 128 pixels.
struct SceneSet {
  fs::path dir;
  SceneSetReport rep;
  SceneSet() {
    dir = fs::temp_directory_path() / ("rv_coco_det_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    auto [items, labels] = shape_items(40, 3);
    const SceneGenerator train(items, labels, {.size = 128, .min_item = 16});
    auto [items2, labels2] = shape_items(40, 4);
    const SceneGenerator val(items2, labels2, {.size = 128, .min_item = 16});
    rep = write_scene_sets(train, val, {.out_dir = dir.string(), .train_images = 24, .val_images = 8, .seed = 5});
  }
  ~SceneSet() { fs::remove_all(dir); }
  std::string root() const { return (dir / "coco").string(); }
};
const SceneSet& scenes() {
  static const SceneSet s;
  return s;
}

// Small scales keep the test fast: the pipelines are the same at 1333 / 1024.
DetTransformOptions small(DetAugment a) {
  return {.augment = a, .long_side = 160, .short_side = 100, .lsj_height = 96, .lsj_width = 96};
}

std::shared_ptr<CocoDetectionDataset> dataset(const std::string& split, bool train, DetTransformOptions t) {
  return std::make_shared<CocoDetectionDataset>(
      CocoDetectionOptions{.root = scenes().root(), .split = split, .train = train, .transform = t});
}

// Box in [0, w] x [0, h] with x1 <= x2, y1 <= y2.
bool inside(const Box& b, int64_t h, int64_t w) {
  return b[0] >= 0 && b[1] >= 0 && b[2] <= double(w) && b[3] <= double(h) && b[0] <= b[2] && b[1] <= b[3];
}

}  // namespace

TEST_CASE("sample counts: train keeps filter_empty_gt's images, eval keeps all") {
  RV_NEED_JPEG_ENCODER();
  const SceneSet& s = scenes();
  for (const std::string split : {"train", "val"}) {
    INFO(split);
    const CocoInstances coco =
        CocoInstances::read((fs::path(s.root()) / "annotations" / ("instances_" + split + "2017.json")).string());
    int64_t with_ann = 0;  // the rule by hand: any annotation, crowd included; shorter side >= 32
    for (size_t i = 0; i < coco.images().size(); ++i)
      with_ann += !coco.annotations_of(int64_t(i)).empty() &&
                  std::min(coco.images()[i].width, coco.images()[i].height) >= 32;
    const int64_t n = s.rep.images[split == "train" ? 0 : 1];
    const int64_t empty = s.rep.empty_images[split == "train" ? 0 : 1];
    CHECK(dataset(split, true, small(DetAugment::resize))->size() == with_ann);
    CHECK(with_ann == n - empty);  // scenes are >= 96 pixels: only the empty ones go
    CHECK(dataset(split, false, small(DetAugment::resize))->size() == n);
    CHECK(dataset(split, true, small(DetAugment::resize))->num_classes() == 10);
  }
  CHECK(s.rep.empty_images[0] > 0);  // the filter is exercised
}

TEST_CASE("every transform: image meta = the tensor's size, boxes inside the image, labels with their boxes") {
  RV_NEED_JPEG_ENCODER();
  for (DetAugment a : {DetAugment::resize, DetAugment::resize_flip, DetAugment::lsj}) {
    DetTransformOptions t = small(a);
    if (a == DetAugment::lsj) t.ratio_max = 3.0;  // also crops that cut boxes (96 * 3 > 128)
    const auto ds = dataset("train", true, t);
    int64_t boxes = 0;
    for (int64_t i = 0; i < ds->size(); ++i) {
      INFO(det_augment_name(a) << " sample " << i);
      Generator g(7, uint64_t(i));
      const Sample s = ds->get(i, g);
      REQUIRE(s.targets);
      const DetTarget& tg = *s.targets;
      REQUIRE(s.image.shape() == Shape{3, tg.meta.height, tg.meta.width});
      if (a == DetAugment::lsj) CHECK((tg.meta.height <= 96 && tg.meta.width <= 96));
      else CHECK((std::max(tg.meta.height, tg.meta.width) <= 160 && std::min(tg.meta.height, tg.meta.width) <= 100));
      REQUIRE(tg.boxes.size() == tg.labels.size());
      for (const Box& b : tg.boxes) CHECK(inside(b, tg.meta.height, tg.meta.width));
      for (const Box& b : tg.crowd_boxes) CHECK(inside(b, tg.meta.height, tg.meta.width));
      for (int64_t l : tg.labels) CHECK((l >= 0 && l < 10));
      CHECK(tg.meta.image_id == ds->coco().images()[size_t(ds->image_index(i))].id);
      boxes += int64_t(tg.boxes.size());
    }
    CHECK(boxes > 0);
  }
}

TEST_CASE("boxes mapped back to the original image (scale factors, crop, flip) equal the annotation") {
  RV_NEED_JPEG_ENCODER();
  DetTransformOptions lsj_whole = small(DetAugment::lsj);
  lsj_whole.ratio_max = 0.7;  // resized <= 67 < 96: the crop is the whole image, nothing clipped
  lsj_whole.ratio_min = 0.3;
  int64_t checked = 0, flipped = 0;
  for (const DetTransformOptions& t : {small(DetAugment::resize), small(DetAugment::resize_flip), lsj_whole}) {
    const auto ds = dataset("val", false, t);
    for (int64_t i = 0; i < ds->size(); ++i) {
      INFO(det_augment_name(t.augment) << " sample " << i);
      Generator g(11, uint64_t(i));
      const Sample s = ds->get(i, g);
      const DetTarget& tg = *s.targets;
      const CocoTargets want = ds->coco().targets(ds->image_index(i));
      REQUIRE(tg.boxes.size() == want.boxes.size());
      REQUIRE(tg.crowd_boxes.size() == want.crowd_boxes.size());
      CHECK(tg.labels == want.labels);
      CHECK(tg.meta.ori_height == ds->coco().images()[size_t(ds->image_index(i))].height);
      for (size_t k = 0; k < want.boxes.size(); ++k) {
        const Box b = box_to_original(tg.boxes[k], tg.meta);
        for (size_t j = 0; j < 4; ++j) CHECK(std::abs(b[j] - want.boxes[k][j]) <= 1e-6);
        ++checked;
      }
      for (size_t k = 0; k < want.crowd_boxes.size(); ++k) {
        const Box b = box_to_original(tg.crowd_boxes[k], tg.meta);
        for (size_t j = 0; j < 4; ++j) CHECK(std::abs(b[j] - want.crowd_boxes[k][j]) <= 1e-6);
      }
      flipped += tg.meta.flip;
      if (t.augment == DetAugment::resize) CHECK(!tg.meta.flip);
    }
  }
  CHECK(checked > 20);
  CHECK(flipped > 0);
}

TEST_CASE("box_to_original undoes resize, a crop with an offset, and a flip") {
  DetImage d;
  d.image = Image(60, 80, 3);
  d.boxes = {{10, 12, 30, 40}, {0.5, 1.25, 79.5, 59}, {70, 50, 80, 60}};
  d.labels = {0, 1, 2};
  d.crowd_boxes = {{20, 20, 25, 26}};
  const DetTransformOptions opt{.augment = DetAugment::lsj};
  for (bool flip : {false, true}) {
    // 80x60 -> 107x80 (scale 1.3375, 1.3333), crop 50x70 at (9, 11): box 0 and the crowd box lie
    // inside the crop, box 1 is clipped, box 2 falls outside and is dropped.
    const DetParams p{.ratio = 1, .resized_height = 80, .resized_width = 107, .crop = CropBox{9, 11, 50, 70}, .flip = flip};
    DetImageMeta m;
    const DetImage r = apply_det_transform(d, p, opt, &m);
    CHECK((m.crop_top == 9 && m.crop_left == 11 && m.width == 70 && m.height == 50 && m.flip == flip));
    REQUIRE(r.labels == std::vector<int64_t>{0, 1});
    for (size_t j = 0; j < 4; ++j) CHECK(std::abs(box_to_original(r.boxes[0], m)[j] - d.boxes[0][j]) <= 1e-9);
    REQUIRE(r.crowd_boxes.size() == 1);
    for (size_t j = 0; j < 4; ++j) CHECK(std::abs(box_to_original(r.crowd_boxes[0], m)[j] - d.crowd_boxes[0][j]) <= 1e-9);
    // Box 1 is clipped to the crop window: its left and bottom map back to the window's edges.
    const Box clipped = box_to_original(r.boxes[1], m);
    CHECK(std::abs(clipped[0] - 11 / (107.0 / 80)) <= 1e-9);
    CHECK(std::abs(clipped[3] - (9 + 50) / (80.0 / 60)) <= 1e-9);
  }
}

TEST_CASE("flip twice = identity; a flipped sample is the unflipped one mirrored") {
  DetImage d;
  d.image = Image(7, 11, 3);
  for (size_t i = 0; i < d.image.pixels.size(); ++i) d.image.pixels[i] = uint8_t(i * 37 % 251);
  d.boxes = {{0, 0, 11, 7}, {1.5, 2, 4.25, 6}};
  d.labels = {3, 4};
  d.crowd_boxes = {{2, 1, 3, 2}};
  DetImage f = d;
  det_hflip_(f);
  CHECK(f.boxes[1] == Box{11 - 4.25, 2, 11 - 1.5, 6});
  det_hflip_(f);
  CHECK(f.image.pixels == d.image.pixels);
  CHECK(f.boxes == d.boxes);
  CHECK(f.crowd_boxes == d.crowd_boxes);
  CHECK(f.labels == d.labels);
  // apply_det_transform with flip = the same without, then det_hflip_.
  DetParams p{.resized_height = 13, .resized_width = 20};
  const DetImage plain = apply_det_transform(d, p, {});
  p.flip = true;
  DetImageMeta m;
  DetImage fl = apply_det_transform(d, p, {}, &m);
  CHECK(m.flip);
  det_hflip_(fl);
  CHECK(fl.image.pixels == plain.image.pixels);
  REQUIRE(fl.boxes.size() == plain.boxes.size());
  for (size_t k = 0; k < fl.boxes.size(); ++k)  // W - (W - x) = x up to one rounding
    for (size_t j = 0; j < 4; ++j) CHECK(std::abs(fl.boxes[k][j] - plain.boxes[k][j]) <= 1e-12);
}

TEST_CASE("LSJ draws: ratio in [0.1, 2), keep-ratio size of int(1024 r), crop min(side, 1024) inside, fair coin") {
  const DetTransformOptions opt{.augment = DetAugment::lsj};
  double rmin = 10, rmax = 0, rsum = 0;
  int flips = 0, cut = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    Generator g(3, uint64_t(i));
    const int64_t H = 200 + (i * 37) % 600, W = 200 + (i * 91) % 700;
    const DetParams p = det_params(H, W, opt, g);
    CHECK((p.ratio >= 0.1 && p.ratio < 2.0));
    rmin = std::min(rmin, p.ratio), rmax = std::max(rmax, p.ratio), rsum += p.ratio;
    const int64_t side = int64_t(1024 * p.ratio);
    CHECK(std::array<int64_t, 2>{p.resized_height, p.resized_width} == keep_ratio_size(H, W, side, side));
    REQUIRE(p.crop);
    const CropBox& c = *p.crop;
    CHECK(c.height == std::min<int64_t>(p.resized_height, 1024));
    CHECK(c.width == std::min<int64_t>(p.resized_width, 1024));
    CHECK((c.top >= 0 && c.top + c.height <= p.resized_height));
    CHECK((c.left >= 0 && c.left + c.width <= p.resized_width));
    cut += c.top > 0 || c.left > 0;
    flips += p.flip;
    // The same generator state gives the same parameters.
    Generator g2(3, uint64_t(i));
    const DetParams q = det_params(H, W, opt, g2);
    CHECK((q.ratio == p.ratio && q.crop == p.crop && q.flip == p.flip));
  }
  CHECK(rmin < 0.11);
  CHECK(rmax > 1.99);
  CHECK(std::abs(rsum / n - 1.05) < 0.03);
  CHECK(std::abs(double(flips) / n - 0.5) < 0.03);
  CHECK(cut > n / 10);
  // The 1x recipe draws only the coin, the eval resize nothing.
  Generator g(1, 1);
  const DetParams e = det_params(427, 640, {}, g);
  CHECK(e.resized_height == 800);
  CHECK(e.resized_width == 1199);
  CHECK(!e.flip);
  CHECK(g.offset() == 0);
  CHECK_THROWS_WITH_AS(det_params(10, 10, {.augment = DetAugment::lsj, .ratio_min = 0}, g),
                       "det_params: ratio_min, ratio_max: expected 0 < min <= max, got 0.000000, 2.000000",
                       std::invalid_argument);
  CHECK(det_augment_from_name("lsj") == DetAugment::lsj);
  CHECK_THROWS_AS(det_augment_from_name("mosaic"), std::invalid_argument);
}

TEST_CASE("pad_batch: largest size rounded up to the divisor, at least the minimum, value in the padding") {
  CHECK(padded_batch_shape({{3, 50, 70}, {3, 65, 33}}, {}) == Shape{2, 3, 96, 96});
  CHECK(padded_batch_shape({{3, 64, 64}}, {}) == Shape{1, 3, 64, 64});
  CHECK(padded_batch_shape({{3, 50, 70}}, {.size_divisor = 1}) == Shape{1, 3, 50, 70});
  CHECK(padded_batch_shape({{3, 50, 70}}, {.min_height = 1024, .min_width = 1024}) == Shape{1, 3, 1024, 1024});
  CHECK(padded_batch_shape({{3, 1030, 70}}, {.min_height = 1024, .min_width = 1024}) == Shape{1, 3, 1056, 1024});
  CHECK(padded_batch_shape({{3, 50, 70}}, {.min_height = 100, .min_width = 10}) == Shape{1, 3, 100, 96});  // max(up(h), min)
  CHECK_THROWS_WITH_AS(padded_batch_shape({{3, 5, 5}, {1, 5, 5}}, {}),
                       "padded_batch_shape: image 1: expected (C, H, W) with C = 3, got [1, 5, 5]", std::invalid_argument);
  CHECK_THROWS_AS(padded_batch_shape({{3, 5, 5}}, {.size_divisor = 0}), std::invalid_argument);
  // A non-contiguous image, padded with -1.
  Tensor img = arange(0, 2 * 3 * 5, 1, DType::f32).reshape({2, 5, 3}).transpose(1, 2);  // (2, 3, 5)
  Tensor out = full({2, 4, 8}, 99.0);
  pad_into(img, {.value = -1}, out);
  const Tensor c = img.contiguous();
  for (int64_t ch = 0; ch < 2; ++ch)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 8; ++x) {
        const float want = (y < 3 && x < 5) ? c.data<float>()[(ch * 3 + y) * 5 + x] : -1.f;
        CHECK(out.data<float>()[(ch * 4 + y) * 8 + x] == want);
      }
  CHECK_THROWS_AS(pad_into(img, {}, full({2, 2, 8}, 0.0)), std::invalid_argument);
}

TEST_CASE("loader batches: padded to 32 with 0, valid sizes and targets per row, = the data set's samples") {
  RV_NEED_JPEG_ENCODER();
  const auto ds = dataset("train", true, small(DetAugment::resize_flip));
  Loader loader(ds, {.batch_size = 5, .shuffle = true, .seed = 4, .pad = PadOptions{}});
  loader.start_epoch(2);
  int64_t rows = 0;
  bool mixed = false;
  while (auto b = loader.next()) {
    const int64_t B = b->images.size(0), H = b->images.size(2), W = b->images.size(3);
    REQUIRE(b->image_sizes.size() == size_t(B));
    REQUIRE(b->targets.size() == size_t(B));
    CHECK((H % 32 == 0 && W % 32 == 0));
    int64_t mh = 0, mw = 0;
    for (int64_t r = 0; r < B; ++r) {
      const auto [h, w] = b->image_sizes[size_t(r)];
      mh = std::max(mh, h), mw = std::max(mw, w);
      mixed |= h != b->image_sizes[0][0] || w != b->image_sizes[0][1];
      Generator g(4, sample_stream(2, b->indices[size_t(r)], 0));
      const Sample s = ds->get(b->indices[size_t(r)], g);
      REQUIRE(s.image.shape() == Shape{3, h, w});
      CHECK(b->targets[size_t(r)]->boxes == s.targets->boxes);
      CHECK(b->targets[size_t(r)]->meta.flip == s.targets->meta.flip);
      const float* p = b->images.data<float>() + r * 3 * H * W;
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const float v = p[(c * H + y) * W + x];
            if (y < h && x < w) REQUIRE(v == s.image.data<float>()[(c * h + y) * w + x]);
            else REQUIRE(v == 0.f);  // mmdet pads the normalised batch with 0
          }
    }
    CHECK(H == (mh + 31) / 32 * 32);
    CHECK(W == (mw + 31) / 32 * 32);
    rows += B;
  }
  CHECK(rows == ds->size());
  CHECK(mixed);  // the scene sizes differ, so padding really happened
  CHECK(loader.describe().find("padded to a multiple of 32") != std::string::npos);
  CHECK_THROWS_AS(Loader(ds, {.resolutions = {64}, .pad = PadOptions{}}), std::invalid_argument);
}

TEST_CASE("the same batches for 0, 1 and 3 workers, and on resume at batch k") {
  RV_NEED_JPEG_ENCODER();
  const auto ds = dataset("train", true, small(DetAugment::lsj));
  auto run = [&](int workers, int64_t skip) {
    Loader loader(ds, {.batch_size = 4, .shuffle = true, .workers = workers, .seed = 8,
                       .pad = PadOptions{.min_height = 96, .min_width = 96}});
    loader.start_epoch(1, skip);
    std::vector<Batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
  };
  const std::vector<Batch> ref = run(0, 0);
  REQUIRE(ref.size() == size_t((ds->size() + 3) / 4));
  auto same = [](const Batch& a, const Batch& b) {
    if (a.indices != b.indices || a.image_sizes != b.image_sizes || a.images.shape() != b.images.shape()) return false;
    if (std::memcmp(a.images.data<float>(), b.images.data<float>(), size_t(a.images.numel()) * 4) != 0) return false;
    for (size_t r = 0; r < a.targets.size(); ++r)
      if (a.targets[r]->boxes != b.targets[r]->boxes || a.targets[r]->labels != b.targets[r]->labels ||
          a.targets[r]->meta.crop_top != b.targets[r]->meta.crop_top)
        return false;
    return true;
  };
  for (int workers : {1, 3}) {
    const std::vector<Batch> got = run(workers, 0);
    REQUIRE(got.size() == ref.size());
    for (size_t k = 0; k < ref.size(); ++k) CHECK_MESSAGE(same(got[k], ref[k]), workers << " workers, batch " << k);
  }
  const std::vector<Batch> resumed = run(2, 3);
  REQUIRE(resumed.size() == ref.size() - 3);
  for (size_t k = 0; k < resumed.size(); ++k) CHECK(same(resumed[k], ref[k + 3]));
  for (const Batch& b : ref) CHECK((b.images.size(2) == 96 && b.images.size(3) == 96));  // the fixed-size pad
}

TEST_CASE("errors name the file: a missing image, a missing annotation file, a missing folder") {
  RV_NEED_JPEG_ENCODER();
  const fs::path copy = scenes().dir / "broken";
  fs::remove_all(copy);
  fs::create_directories(copy);
  fs::copy(scenes().root(), copy, fs::copy_options::recursive);
  const auto ds = std::make_shared<CocoDetectionDataset>(
      CocoDetectionOptions{.root = copy.string(), .split = "val", .train = false, .transform = small(DetAugment::resize)});
  const std::string path = ds->image_path(2);
  fs::remove(path);
  Generator g(0, 0);
  CHECK_THROWS_WITH_AS(ds->get(2, g), doctest::Contains(path.c_str()), std::runtime_error);
  Loader loader(ds, {.batch_size = 4, .shuffle = false, .workers = 2, .pad = PadOptions{}});
  loader.start_epoch(0);
  CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("sample 2 of coco val"), std::runtime_error);
  loader.start_epoch(0);
  CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains(path.c_str()), std::runtime_error);
  CHECK_THROWS_WITH_AS(CocoDetectionDataset({.root = copy.string(), .split = "test"}), doctest::Contains("test2017"),
                       std::runtime_error);
  fs::remove(copy / "annotations" / "instances_val2017.json");
  CHECK_THROWS_WITH_AS(CocoDetectionDataset({.root = copy.string(), .split = "val"}),
                       doctest::Contains("instances_val2017.json"), std::runtime_error);
  fs::remove_all(copy);
}
