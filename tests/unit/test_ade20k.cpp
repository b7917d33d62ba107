// The ADE20k-layout reader (data/ade20k.h): listing and pairing in mmseg's order, labels as PNG
// values with reduce_zero_label, the class lists, every error naming its file, and the files
// `ropevit make-scenes` writes (10 classes, background ignored).
//
// The tiny sets are written here: label maps as 8-bit grey PNGs (data/image_encode.h), and the
// images as grey PNGs too, under a .jpg name (the decoder sniffs the format from the bytes), so
// that pixel values come back exactly.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "data/ade20k.h"
#include "data/decode_image.h"
#include "data/image_encode.h"
#include "data/scene_files.h"
#include "data/scenes.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

void write_png(const fs::path& p, const std::vector<uint8_t>& px, int h, int w) {
  write_bytes(p, encode_grey_png(px.data(), h, w));
}

// A fresh folder under the temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) : path(fs::temp_directory_path() / ("rv_ade_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// ROOT/images/training/{c,a,b}.jpg with label maps; image k is (5 + k) x (7 + k), its grey value
// 10 * k + y, its raw labels (x + y) % 4 with a 255 in the corner.
void write_tiny_set(const fs::path& root) {
  const char* names[3] = {"c", "a", "b"};
  for (int k = 0; k < 3; ++k) {
    const int h = 5 + k, w = 7 + k;
    std::vector<uint8_t> img(size_t(h * w)), lab(size_t(h * w));
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        img[size_t(y * w + x)] = uint8_t(10 * k + y);
        lab[size_t(y * w + x)] = uint8_t((x + y) % 4);
      }
    lab[0] = 255;
    write_png(root / "images" / "training" / (std::string(names[k]) + ".jpg"), img, h, w);
    write_png(root / "annotations" / "training" / (std::string(names[k]) + ".png"), lab, h, w);
  }
  write_bytes(root / "images" / "training" / "notes.txt", "not an image");  // ignored: not *.jpg
}

}  // namespace

TEST_CASE("ade20k class names: mmseg's 150, and the scenes' 10") {
  const auto& n = ade20k_class_names();
  REQUIRE(n.size() == 150);
  CHECK(n[0] == "wall");
  CHECK(n[7] == "bed ");  // mmseg's spelling, trailing space included
  CHECK(n[12] == "person");
  CHECK(n[149] == "flag");
  CHECK(scene_class_names().size() == 10);
  CHECK(scene_class_names()[0] == "T-shirt/top");
}

TEST_CASE("ade20k reader: sorted listing, pairs, reduce_zero_label") {
  TempDir d("list");
  write_tiny_set(d.path);
  const Ade20k a = Ade20k::open(d.path.string(), "training");
  REQUIRE(a.size() == 3);
  CHECK(a.num_classes() == 150);
  CHECK(fs::path(a.image_path(0)).filename() == "a.jpg");  // sorted by name, as mmseg
  CHECK(fs::path(a.image_path(1)).filename() == "b.jpg");
  CHECK(fs::path(a.image_path(2)).filename() == "c.jpg");
  CHECK(fs::path(a.annotation_path(1)).filename() == "b.png");
  // "a" is image k = 1: 6 x 8, grey 10 + y.
  const Image im = a.read_image(0);
  REQUIRE(im.height == 6);
  REQUIRE(im.width == 8);
  REQUIRE(im.channels == 3);
  CHECK(im.at(3, 5, 0) == 13);
  CHECK(im.at(3, 5, 2) == 13);
  const Image lab = a.read_labels(0, im.height, im.width);
  REQUIRE(lab.channels == 1);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) {
      const int raw = (y == 0 && x == 0) ? 255 : (x + y) % 4;
      const int want = raw == 0 || raw == 255 ? 255 : raw - 1;  // 0 -> ignore, v -> v - 1, 255 stays
      CHECK(lab.at(y, x, 0) == want);
    }
  // Without reduce_zero_label the raw values come back.
  const Ade20k raw = Ade20k::open(d.path.string(), "training", {.reduce_zero_label = false, .class_names = scene_class_names()});
  const Image r = raw.read_labels(0);
  CHECK(r.at(0, 0, 0) == 255);
  CHECK(r.at(0, 1, 0) == 1);
  CHECK(r.at(0, 3, 0) == 3);
  CHECK(r.at(1, 3, 0) == 0);
  CHECK_THROWS_WITH_AS(a.image_path(3), doctest::Contains("index 3 is outside 0 .. 2"), std::out_of_range);
}

TEST_CASE("ade20k reader: a palette label map gives its palette indices") {
  TempDir d("palette");
  const std::string pal = std::string(RV_FIXTURE_DIR) + "/images/palette.png";  // 11 x 13, mode P
  const Image raw = read_png_indices(pal);
  write_png(d.path / "images" / "validation" / "p.jpg", std::vector<uint8_t>(size_t(raw.height * raw.width), 9),
            raw.height, raw.width);
  fs::create_directories(d.path / "annotations" / "validation");
  fs::copy_file(pal, d.path / "annotations" / "validation" / "p.png");
  const Ade20k a = Ade20k::open(d.path.string(), "validation", {.class_names = std::vector<std::string>(254, "c")});
  const Image lab = a.read_labels(0, raw.height, raw.width);
  REQUIRE(lab.pixels.size() == raw.pixels.size());
  bool zero_seen = false;
  for (size_t i = 0; i < raw.pixels.size(); ++i) {
    zero_seen |= raw.pixels[i] == 0;
    CHECK(lab.pixels[i] == (raw.pixels[i] == 0 ? 255 : raw.pixels[i] - 1));
  }
  CHECK(zero_seen);
}

TEST_CASE("reduce_zero_label: every byte value as mmseg maps it") {
  Image im(1, 256, 1);
  for (int v = 0; v < 256; ++v) im.pixels[size_t(v)] = uint8_t(v);
  Ade20k::reduce_zero_label_(im);
  CHECK(im.pixels[0] == 255);
  CHECK(im.pixels[255] == 255);
  for (int v = 1; v < 255; ++v) CHECK(im.pixels[size_t(v)] == v - 1);
}

TEST_CASE("ade20k reader: errors name the file") {
  TempDir d("err");
  write_tiny_set(d.path);
  const std::string root = d.path.string();
  CHECK_THROWS_WITH_AS(Ade20k::open(root, "validation"), doctest::Contains("validation is not a directory"),
                       std::runtime_error);
  SUBCASE("missing annotation") {
    fs::remove(d.path / "annotations" / "training" / "b.png");
    CHECK_THROWS_WITH_AS(Ade20k::open(root, "training"), doctest::Contains("b.jpg has no annotation"), std::runtime_error);
  }
  SUBCASE("label map of another size") {
    write_png(d.path / "annotations" / "training" / "a.png", std::vector<uint8_t>(20, 1), 4, 5);
    const Ade20k a = Ade20k::open(root, "training");
    const Image im = a.read_image(0);
    CHECK_THROWS_WITH_AS(a.read_labels(0, im.height, im.width), doctest::Contains("a.png is 4x5 but its image"),
                         std::runtime_error);
  }
  SUBCASE("corrupt label file, corrupt image") {
    write_bytes(d.path / "annotations" / "training" / "c.png", "\x89PNG\r\n\x1a\n garbage");
    write_bytes(d.path / "images" / "training" / "b.jpg", "not a jpeg at all");
    const Ade20k a = Ade20k::open(root, "training");
    CHECK_THROWS_WITH_AS(a.read_labels(2), doctest::Contains("c.png"), std::runtime_error);
    CHECK_THROWS_WITH_AS(a.read_image(1), doctest::Contains("b.jpg"), std::runtime_error);
  }
  SUBCASE("labels beyond the class list") {
    // Raw 3 -> label 2, which a 2-class list does not have.
    const Ade20k a = Ade20k::open(root, "training", {.class_names = {"x", "y"}});
    CHECK_THROWS_WITH_AS(a.read_labels(0), doctest::Contains("holds label 2 (raw value 3) but the data set has 2 classes"),
                         std::runtime_error);
  }
  SUBCASE("no images") {
    fs::create_directories(d.path / "images" / "empty");
    fs::create_directories(d.path / "annotations" / "empty");
    CHECK_THROWS_WITH_AS(Ade20k::open(root, "empty"), doctest::Contains("no *.jpg images in"), std::runtime_error);
  }
  CHECK_THROWS_WITH_AS(Ade20k::open(root, "training", {.class_names = {}}), doctest::Contains("1 .. 255 class names"),
                       std::invalid_argument);
}

TEST_CASE("ade20k reader on make-scenes output: 10 classes, background ignored") {
  if (!have_jpeg_encoder()) {
    MESSAGE("skipped: built without stb_image_write (no JPEG encoder)");
    return;
  }
  TempDir d("scenes");
  auto [items, labels] = shape_items(40, 0);
  const SceneGenerator gen(items, labels, {.size = 64, .min_item = 16});
  write_scene_sets(gen, gen, {.out_dir = d.path.string(), .train_images = 6, .val_images = 3, .seed = 4});
  const std::string root = (d.path / "ADEChallengeData2016").string();
  for (const char* split : {"training", "validation"}) {
    const Ade20k a = Ade20k::open(root, split, {.class_names = scene_class_names()});
    CHECK(a.size() == (std::string(split) == "training" ? 6 : 3));
    for (int64_t i = 0; i < a.size(); ++i) {
      const Image im = a.read_image(i);
      const Image lab = a.read_labels(i, im.height, im.width);  // throws on a label >= 10
      // The same scene: label = class (0..9) on items, 255 on background.
      const Scene s = gen.make(4, std::string(split) == "training" ? 0 : 1, i);
      REQUIRE(lab.pixels.size() == s.label_map.size());
      for (size_t p = 0; p < s.label_map.size(); ++p) {
        const int want = s.label_map[p] == 0 ? 255 : s.label_map[p] - 1;
        if (lab.pixels[p] != want) {
          FAIL_CHECK("pixel " << p << " of " << a.annotation_path(i) << ": " << int(lab.pixels[p]) << " != " << want);
          break;
        }
      }
    }
  }
  // 150 ADE classes also accept the scene labels (0..9), so the class list is what must be chosen.
  CHECK_NOTHROW(Ade20k::open(root, "training").read_labels(0));
}
