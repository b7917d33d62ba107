// data::ImageFolder on a tiny generated ImageNet-style folder (fixture images copied under
// class folders, with the layout's traps: upper-case .JPEG, a PNG named .JPEG, a CMYK JPEG, a
// nested sub-folder, a non-image file, a truncated file): torchvision's class order and file
// order, the cached index (reused, invalidated by a folder's mtime, a corrupt cache rescanned),
// the class map, the train and eval pipelines (shapes, labels, determinism from the Generator,
// eval = the reference chain on the decoded image, scaled decode) and the errors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <unistd.h>

#include "data/decode_jpeg.h"
#include "data/decode_stb.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

const fs::path kImages = fs::path(RV_FIXTURE_DIR) / "images";

struct TempFolder {
  fs::path dir = fs::temp_directory_path() / ("rv_imagefolder_" + std::to_string(::getpid()));
  fs::path root = dir / "train", cache = dir / "cache";
  TempFolder() {
    fs::remove_all(dir);
    put("n02/a.JPEG", "big.jpg");
    put("n02/b.png", "rgb.png");
    put("n02/notes.txt", "garbage.bin");
    put("n01/x.jpg", "rgb.jpg");
    put("n01/sub/y.jpeg", "grey.jpg");
    put("n01/sub-b/v.png", "grey.png");  // "n01/sub-b" sorts before "n01/sub/deeper": '-' < '/'
    put("n01/sub/deeper/u.bmp", "rgb.bmp");
    put("n10/z.JPEG", "cmyk.jpg");
    put("n10/fake.JPEG", "rgb.png");  // a PNG named .JPEG, as one ImageNet train file is
    put("n10/w.jpg", "exif6.jpg");
    put("readme.txt", "garbage.bin");
  }
  ~TempFolder() { fs::remove_all(dir); }
  void put(const std::string& rel, const std::string& fixture) {
    fs::create_directories((root / rel).parent_path());
    fs::copy_file(kImages / fixture, root / rel, fs::copy_options::overwrite_existing);
  }
  // Moves a folder's mtime forward by a second (a new file in the same clock tick may not).
  void touch(const std::string& rel) { fs::last_write_time(root / rel, fs::last_write_time(root / rel) + std::chrono::seconds(1)); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A (3, S, S) buffer of the data set's own sample shape.
Tensor row_of(const ImageFolder& ds) { return empty(ds.sample_shape({})); }

bool have_decoders() {
  if (have_jpeg_decoder() && have_stb_decoder()) return true;
  MESSAGE("skipped: built without an image decoder");
  return false;
}

}  // namespace

TEST_CASE("scan: classes sorted, files in os.walk order, only image extensions") {
  TempFolder t;
  const ImageFolderIndex idx = scan_image_folder(t.root.string());
  CHECK(idx.classes == std::vector<std::string>{"n01", "n02", "n10"});
  // The order of torchvision's make_dataset (sorted(os.walk(...)), then sorted file names), as
  // checked by hand with torchvision on the same tree.
  CHECK(idx.files == std::vector<std::string>{"n01/x.jpg", "n01/sub/y.jpeg", "n01/sub-b/v.png", "n01/sub/deeper/u.bmp",
                                              "n02/a.JPEG", "n02/b.png", "n10/fake.JPEG", "n10/w.jpg", "n10/z.JPEG"});
  CHECK(idx.labels == std::vector<int32_t>{0, 0, 0, 0, 1, 1, 2, 2, 2});
  // A class map fixes the order and the subset.
  std::ofstream(t.dir / "map.txt") << "n10\nn01\n";
  const ImageFolderIndex m = scan_image_folder(t.root.string(), (t.dir / "map.txt").string());
  CHECK(m.classes == std::vector<std::string>{"n10", "n01"});
  CHECK(m.labels == std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1});
  std::ofstream(t.dir / "bad_map.txt") << "n01\nn99\n";
  CHECK(error_of([&] { scan_image_folder(t.root.string(), (t.dir / "bad_map.txt").string()); }).find("class \"n99\"") !=
        std::string::npos);
  CHECK(error_of([&] { scan_image_folder((t.dir / "nope").string()); }).find("not a directory") != std::string::npos);
  fs::create_directories(t.dir / "empty_root");
  CHECK(error_of([&] { scan_image_folder((t.dir / "empty_root").string()); }).find("no class folders") != std::string::npos);
}

TEST_CASE("the cached index: written once, reused, invalidated by a class folder's mtime, garbage rescanned") {
  TempFolder t;
  bool from_cache = true;
  const ImageFolderIndex a = load_image_folder_index(t.root.string(), t.cache.string(), "", &from_cache);
  CHECK(!from_cache);
  const ImageFolderIndex b = load_image_folder_index(t.root.string(), t.cache.string(), "", &from_cache);
  CHECK(from_cache);
  CHECK(b.files == a.files);
  CHECK(b.labels == a.labels);
  CHECK(b.classes == a.classes);
  // A new file changes its folder's mtime: the cache is stale and the new file is listed.
  t.put("n02/c.jpg", "rgb444.jpg");
  t.touch("n02");
  const ImageFolderIndex c = load_image_folder_index(t.root.string(), t.cache.string(), "", &from_cache);
  CHECK(!from_cache);
  CHECK(c.files.size() == a.files.size() + 1);
  // A class map is part of the key.
  std::ofstream(t.dir / "map.txt") << "n01\n";
  const ImageFolderIndex d = load_image_folder_index(t.root.string(), t.cache.string(), (t.dir / "map.txt").string(), &from_cache);
  CHECK(!from_cache);
  CHECK(d.classes.size() == 1);
  // A corrupt cache file (every truncation of a valid one) means a rescan, never a crash.
  load_image_folder_index(t.root.string(), t.cache.string(), "", &from_cache);
  REQUIRE(fs::exists(t.cache));
  fs::path cache_file;
  for (const auto& e : fs::directory_iterator(t.cache)) cache_file = e.path();
  std::string bytes;
  {
    std::ifstream in(cache_file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t len = 0; len < bytes.size(); len += 13) {
    std::ofstream(cache_file, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(len));
    const ImageFolderIndex e = load_image_folder_index(t.root.string(), t.cache.string(), "", &from_cache);
    CHECK(!from_cache);
    CHECK(e.files == c.files);
  }
  // An unwritable cache location costs only the cache.
  CHECK(load_image_folder_index(t.root.string(), "/proc/rv_no_such_dir", "", &from_cache).files == c.files);
}

TEST_CASE("train pipeline: (3, S, S) samples, labels, the same pixels for the same generator") {
  if (!have_decoders()) return;
  TempFolder t;
  for (TrainAugment aug : {TrainAugment::none, TrainAugment::three_augment, TrainAugment::rand_augment}) {
    ImageFolderOptions o;
    o.root = t.root.string();
    o.cache_dir = t.cache.string();
    o.train_tf.size = 16;
    o.train_tf.augment = aug;
    o.train_tf.erasing.probability = 0.5;
    ImageFolder ds(o);
    CHECK(ds.size() == 9);
    CHECK(ds.num_classes() == 3);
    for (int64_t i = 0; i < ds.size(); ++i) {
      Generator g1(11, uint64_t(i)), g2(11, uint64_t(i)), g3(12, uint64_t(i));
      const Sample a = ds.get(i, g1), b = ds.get(i, g2), c = ds.get(i, g3);
      CHECK(a.image.shape() == Shape{3, 16, 16});
      CHECK(a.label == ds.index().labels[size_t(i)]);
      RV_EXPECT_CLOSE(a.image, b.image, .rtol = 0, .atol = 0);
      CHECK(test::compare(a.image, c.image, {0, 0}) != "");  // another stream: other augmentations
    }
    CHECK(ds.describe().find("9 images, 3 classes") != std::string::npos);
  }
}

TEST_CASE("scaled JPEG decode in training: a crop that stays at least S pixels, same shapes") {
  if (!have_decoders()) return;
  TempFolder t;
  ImageFolderOptions o;
  o.root = t.root.string();
  o.cache_dir = t.cache.string();
  o.train_tf.size = 8;
  o.train_tf.rrc.scale_min = 0.9, o.train_tf.rrc.scale_max = 1.0;  // big.jpg (83 x 121) decodes at 1/4 or 1/8 for an 8-pixel output
  ImageFolder fast(o);
  o.train_tf.scaled_decode = false;
  ImageFolder exact(o);
  const int64_t big = 4;  // n02/a.JPEG
  REQUIRE(fast.index().files[big] == "n02/a.JPEG");
  Generator g1(5, 0), g2(5, 0);
  const Tensor a = fast.get(big, g1).image, b = exact.get(big, g2).image;
  CHECK(a.shape() == b.shape());
  // Different resampling chains of the same crop: close, not equal.
  double diff = 0;
  for (int64_t i = 0; i < a.numel(); ++i) diff += std::fabs(a.data<float>()[i] - b.data<float>()[i]);
  CHECK(diff / a.numel() < 0.5);
}

TEST_CASE("eval pipeline: the reference chain on the decoded image; crop_pct; errors name the file") {
  if (!have_decoders()) return;
  TempFolder t;
  ImageFolderOptions o;
  o.root = t.root.string();
  o.cache_dir = t.cache.string();
  o.train = false;
  o.eval_tf.size = 20;
  o.eval_tf.crop_pct = 0.875;
  ImageFolder ds(o);
  for (int64_t i = 0; i < ds.size(); ++i) {
    Generator g(0);
    const Sample s = ds.get(i, g);
    const Tensor want = eval_transform(read_image(ds.path(i)), o.eval_tf);
    RV_EXPECT_CLOSE(s.image, want, .rtol = 0, .atol = 0);
    CHECK(s.image.shape() == Shape{3, 20, 20});
  }
  CHECK(ds.describe().find("eval: resize 22 (bicubic), center crop 20") != std::string::npos);
  // A truncated file: the error names it.
  t.put("n01/broken.jpg", "truncated.jpg");
  t.touch("n01");
  ImageFolder ds2(o);
  int64_t broken = -1;
  for (int64_t i = 0; i < ds2.size(); ++i)
    if (ds2.index().files[size_t(i)] == "n01/broken.jpg") broken = i;
  REQUIRE(broken >= 0);
  Generator g(0);
  CHECK(error_of([&] { ds2.get(broken, g); }).find("n01/broken.jpg") != std::string::npos);
  CHECK(error_of([&] { ds2.get(ds2.size(), g); }).find("out of range") != std::string::npos);
  CHECK(error_of([&] { eval_transform(Image(4, 4, 3), {.size = 2, .crop_pct = 0.0}); }).find("crop_pct must be in (0, 1]") !=
        std::string::npos);
}

TEST_CASE("EXIF orientation in the pipelines: applied by default, off reproduces PIL's default loader") {
  if (!have_decoders()) return;
  const std::string b = read_file_bytes((kImages / "exif6.jpg").string());  // stored 13 x 21, shown 21 x 13
  const auto* d = reinterpret_cast<const uint8_t*>(b.data());
  EvalTransformOptions on{.size = 13, .crop_pct = 1.0}, off = on;
  off.exif_orientation = false;
  CHECK(test::compare(eval_transform(d, b.size(), "x", on), eval_transform(read_image((kImages / "exif6.jpg").string()), on), {0, 0}) == "");
  CHECK(test::compare(eval_transform(d, b.size(), "x", off),
                      eval_transform(read_image((kImages / "exif6.jpg").string(), {.exif_orientation = false}), off), {0, 0}) == "");
  CHECK(test::compare(eval_transform(d, b.size(), "x", on), eval_transform(d, b.size(), "x", off), {0, 0}) != "");
  TrainTransformOptions t;
  t.size = 8;
  t.exif_orientation = false;
  Generator g(1);
  RandomDraws rd(g);
  CHECK(train_transform(d, b.size(), "x", t, nullptr, rd).shape() == Shape{3, 8, 8});
}

TEST_CASE("get() from several threads at once gives the samples of a sequential run (the Dataset contract)") {
  if (!have_decoders()) return;
  TempFolder t;
  ImageFolderOptions o;
  o.root = t.root.string();
  o.cache_dir = t.cache.string();
  o.train_tf.size = 12;
  o.train_tf.augment = TrainAugment::rand_augment;
  o.train_tf.erasing.probability = 0.5;
  const ImageFolder ds(o);
  const int64_t n = ds.size(), reps = 3;
  std::vector<Tensor> seq(size_t(n * reps)), par(size_t(n * reps));
  for (int64_t k = 0; k < n * reps; ++k) {
    Generator g(9, uint64_t(k));
    seq[size_t(k)] = ds.get(k % n, g).image;
  }
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&, w] {
      for (int64_t k = w; k < n * reps; k += 4) {
        Generator g(9, uint64_t(k));
        par[size_t(k)] = ds.get(k % n, g).image;
      }
    });
  for (auto& th : workers) th.join();
  for (int64_t k = 0; k < n * reps; ++k) CHECK(test::compare(par[size_t(k)], seq[size_t(k)], {0, 0}) == "");
}

TEST_CASE("get_into: a batch row gets get()'s pixels, a size request gets the chain at that size") {
  if (!have_decoders()) return;
  TempFolder t;
  for (bool train : {true, false}) {
    ImageFolderOptions o;
    o.root = t.root.string();
    o.cache_dir = t.cache.string();
    o.train = train;
    o.train_tf.size = 16;
    o.train_tf.augment = TrainAugment::three_augment;
    o.train_tf.erasing.probability = 0.5;
    o.eval_tf.size = 16;
    o.eval_tf.crop_pct = 0.875;
    const ImageFolder ds(o);
    CHECK(ds.sample_shape({}) == Shape{3, 16, 16});
    CHECK(ds.sample_shape({.height = 20, .width = 20}) == Shape{3, 20, 20});
    ImageFolderOptions o20 = o;
    o20.train_tf.size = o20.eval_tf.size = 20;
    const ImageFolder ds20(o20);
    Tensor batch = full({3, 3, 20, 20}, 7.0f);  // (B, C, H, W); row 1 is written, rows 0 and 2 must stay
    for (int64_t i = 0; i < ds.size(); ++i) {
      INFO("train " << train << ", file " << ds.index().files[size_t(i)]);
      Generator g1(5, uint64_t(i)), g2(5, uint64_t(i)), g3(5, uint64_t(i));
      const Sample own = ds.get(i, g1);
      Tensor row16 = empty({3, 16, 16});
      CHECK(ds.get_into(i, g2, {}, row16) == own.label);
      RV_EXPECT_CLOSE(row16, own.image, .rtol = 0, .atol = 0);
      // A request of 20 px: the pixels of a data set made for 20 px, written into the batch row.
      Generator g4(5, uint64_t(i));
      const Sample ref20 = ds20.get(i, g4);
      CHECK(ds.get_into(i, g3, {.height = 20, .width = 20}, batch.select(0, 1)) == ref20.label);
      RV_EXPECT_CLOSE(batch.select(0, 1), ref20.image, .rtol = 0, .atol = 0);
      RV_EXPECT_CLOSE(batch.select(0, 0), full({3, 20, 20}, 7.0f), .rtol = 0, .atol = 0);
      RV_EXPECT_CLOSE(batch.select(0, 2), full({3, 20, 20}, 7.0f), .rtol = 0, .atol = 0);
    }
    Generator g(1, 0);
    Tensor wrong = empty({3, 16, 17});
    CHECK(error_of([&] { ds.get_into(0, g, {}, wrong); }).find("out must be [3, 16, 16]") != std::string::npos);
    CHECK(error_of([&] { (void)ds.sample_shape({.height = 16, .width = 20}); }).find("square") != std::string::npos);
    CHECK(error_of([&] { ds.get_into(ds.size(), g, {}, row_of(ds)); }).find("out of range") != std::string::npos);
  }
}

TEST_CASE("subset: files spread evenly over the sorted index, every class kept; a subset too large is an error") {
  TempFolder t;
  ImageFolderOptions o;
  o.root = t.root.string();
  o.cache_dir = t.cache.string();
  const ImageFolder all(o);
  REQUIRE(all.size() == 9);
  o.subset = 4;
  const ImageFolder some(o);
  CHECK(some.size() == 4);
  CHECK(some.num_classes() == 3);  // the class list is the folder's, whatever is kept
  for (int64_t i = 0; i < 4; ++i) {  // file floor(i * 9 / 4): 0, 2, 4, 6
    CHECK(some.index().files[size_t(i)] == all.index().files[size_t(i * 9 / 4)]);
    CHECK(some.index().labels[size_t(i)] == all.index().labels[size_t(i * 9 / 4)]);
  }
  CHECK(some.describe().find("4 of 9, evenly spread") != std::string::npos);
  o.subset = 9;
  CHECK(ImageFolder(o).size() == 9);
  o.subset = 10;
  const std::string e = error_of([&] { ImageFolder x(o); });
  CHECK(e.find("subset = 10") != std::string::npos);
  CHECK(e.find("has 9 images") != std::string::npos);
}

TEST_CASE("through the Loader: multi-resolution batches, rows = get() at the batch's size, any worker count") {
  if (!have_decoders()) return;
  TempFolder t;
  ImageFolderOptions o;
  o.root = t.root.string();
  o.cache_dir = t.cache.string();
  o.train_tf.size = 16;
  o.train_tf.augment = TrainAugment::three_augment;
  o.train_tf.erasing.probability = 0.5;
  auto ds = std::make_shared<ImageFolder>(o);
  const std::vector<int64_t> sizes = {12, 16, 20};
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 2}) {
    Loader loader(ds, {.batch_size = 2, .shuffle = true, .drop_last = true, .workers = workers, .seed = 3,
                       .resolutions = sizes});
    loader.start_epoch(1);
    runs.emplace_back();
    while (auto b = loader.next()) runs.back().push_back(*b);
  }
  REQUIRE(runs[0].size() == 4);  // 9 files, batches of 2, the last one dropped
  REQUIRE(runs[1].size() == 4);
  std::map<int, ImageFolder> at_size;  // the data set made for each size: the reference
  for (int64_t s : sizes) {
    ImageFolderOptions os = o;
    os.train_tf.size = int(s);
    at_size.emplace(int(s), os);
  }
  for (size_t b = 0; b < runs[0].size(); ++b) {
    const Batch& x = runs[0][b];
    const int64_t side = batch_resolution(sizes, 3, 1, int64_t(b));
    CHECK(x.images.shape() == Shape{2, 3, side, side});
    RV_EXPECT_CLOSE(runs[1][b].images, x.images, .rtol = 0, .atol = 0);  // workers do not matter
    for (int64_t r = 0; r < 2; ++r) {
      Generator g(3, sample_stream(1, x.indices[size_t(r)], 0));
      const Sample ref = at_size.at(int(side)).get(x.indices[size_t(r)], g);
      RV_EXPECT_CLOSE(x.images.select(0, r), ref.image, .rtol = 0, .atol = 0);
      CHECK(x.labels.data<int64_t>()[r] == ref.label);
    }
  }
}
