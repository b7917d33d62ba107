// Synthetic scenes (data/scenes.h) and the COCO / ADE20k files made of them (data/scene_files.h,
// `ropevit make-scenes`): a scene's masks, boxes, areas and label map agree; the files read back
// through the COCO reader give the same annotations (RLE masks = the scene's masks); a perfect
// prediction scores AP = 1 and mIoU = 1; everything is a function of the seed. Items are the drawn
// shapes (shape_items), so the test needs no Fashion-MNIST.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "data/coco.h"
#include "data/decode_image.h"
#include "data/image_encode.h"
#include "data/metrics/segmentation.h"
#include "data/scene_files.h"
#include "data/scenes.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

SceneGenerator generator(int64_t size = 128, uint64_t item_seed = 0) {
  auto [items, labels] = shape_items(50, item_seed);
  return SceneGenerator(items, labels, {.size = size, .min_item = 16});
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What every scene must satisfy, whatever the seed.
void check_scene(const Scene& s, int64_t size) {
  REQUIRE(std::max(s.height, s.width) == size);
  REQUIRE(std::min(s.height, s.width) >= size * 3 / 4);
  REQUIRE(s.rgb.size() == size_t(s.height * s.width * 3));
  REQUIRE(s.label_map.size() == size_t(s.height * s.width));
  std::vector<int> owners(s.label_map.size(), 0);
  for (const SceneObject& o : s.objects) {
    CHECK(o.label >= 0);
    CHECK(o.label < 10);
    int64_t area = 0, x0 = s.width, y0 = s.height, x1 = -1, y1 = -1;
    for (int64_t y = 0; y < s.height; ++y)
      for (int64_t x = 0; x < s.width; ++x)
        if (o.mask[size_t(y * s.width + x)]) {
          ++area;
          ++owners[size_t(y * s.width + x)];
          CHECK(s.label_map[size_t(y * s.width + x)] == o.label + 1);
          x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
        }
    CHECK(area == o.area);
    CHECK(area > 0);
    CHECK(o.box == std::array<int64_t, 4>{x0, y0, x1 - x0 + 1, y1 - y0 + 1});  // tight, inside the image
  }
  // The objects' visible masks partition the labelled pixels.
  for (size_t p = 0; p < owners.size(); ++p) CHECK((owners[p] == 1) == (s.label_map[p] != 0));
}

}  // namespace

TEST_CASE("scenes: masks, boxes, areas and label map agree; a function of (seed, split, index)") {
  const SceneGenerator gen = generator();
  int crowd = 0, empty = 0, objects = 0;
  for (int64_t i = 0; i < 40; ++i) {
    const Scene s = gen.make(3, 0, i);
    check_scene(s, 128);
    for (const SceneObject& o : s.objects) crowd += o.crowd;
    empty += s.objects.empty();
    objects += int(s.objects.size());
  }
  CHECK(crowd > 0);  // the generator does make crowd groups and empty scenes
  CHECK(empty > 0);
  CHECK(objects > 80);
  const Scene a = gen.make(3, 0, 5), b = gen.make(3, 0, 5), c = gen.make(4, 0, 5), d = gen.make(3, 1, 5);
  CHECK(a.rgb == b.rgb);
  CHECK(a.label_map == b.label_map);
  CHECK(a.rgb != c.rgb);
  CHECK(a.rgb != d.rgb);
}

TEST_CASE("scene generator: bad arguments are named") {
  auto [items, labels] = shape_items(10, 0);
  CHECK_THROWS_WITH_AS(SceneGenerator(items, labels, {.size = 32}), "SceneGenerator: size: expected 64..4096, got 32",
                       std::invalid_argument);
  CHECK_THROWS_AS(SceneGenerator(items.to(DType::f32), labels, {}), std::invalid_argument);
  Tensor bad = labels.clone();
  bad.data<int64_t>()[3] = 10;
  CHECK_THROWS_WITH_AS(SceneGenerator(items, bad, {}), "SceneGenerator: labels: expected values in 0..9, got 10 at 3",
                       std::invalid_argument);
}

TEST_CASE("COCO RLE: column-major runs starting with zeros, and back") {
  // 2 x 3 mask, rows: 0 1 1 / 1 1 0 -> column-major 0 1 | 1 1 | 1 0 -> runs 1 (zero), 4 (ones), 1 (zero)
  const std::vector<uint8_t> m = {0, 1, 1, 1, 1, 0};
  CHECK(mask_to_rle(m, 2, 3) == std::vector<int64_t>{1, 4, 1});
  CHECK(rle_to_mask({1, 4, 1}, 2, 3) == m);
  CHECK(mask_to_rle({1, 1}, 1, 2) == std::vector<int64_t>{0, 2});
  CHECK_THROWS_AS(rle_to_mask({1, 4}, 2, 3), std::invalid_argument);
  CHECK_THROWS_AS(rle_to_mask({1, 9}, 2, 3), std::invalid_argument);
}

TEST_CASE("the built-in PNG writer: a valid zlib stream of stored blocks") {
  const uint8_t px = 7;
  const std::string png = encode_grey_png_stored(&px, 1, 1);
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  // IDAT payload: zlib header 78 01, one final stored block of 2 bytes (filter 0, pixel 7),
  // Adler-32 of {0, 7} = (9 << 16) | 8.
  const std::string idat = std::string("IDAT") + std::string("\x78\x01\x01\x02\x00\xfd\xff\x00\x07\x00\x09\x00\x08", 13);
  CHECK(png.find(idat) != std::string::npos);
  CHECK(png.substr(png.size() - 12) == std::string("\x00\x00\x00\x00IEND\xae\x42\x60\x82", 12));  // IEND's known CRC
  // More than one stored block (65535 bytes at most each).
  std::vector<uint8_t> big(300 * 300, 1);
  const std::string p2 = encode_grey_png_stored(big.data(), 300, 300);
  CHECK(p2.size() > 300 * 301);
  CHECK(p2.size() < 300 * 301 + 100);
}

TEST_CASE("RGB PNG (both writers) decodes back to the same pixels; sizes are checked") {
  // 5 x 7 (odd, not a multiple of anything), every byte distinct enough to catch a channel swap.
  const int64_t H = 5, W = 7;
  std::vector<uint8_t> rgb(size_t(H * W * 3));
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i * 37 + 11) & 0xff);
  for (const std::string& png : {encode_rgb_png(rgb.data(), H, W), encode_rgb_png_stored(rgb.data(), H, W)}) {
    const Image back = decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "rgb.png");
    REQUIRE(back.height == H);
    REQUIRE(back.width == W);
    REQUIRE(back.channels == 3);
    CHECK(back.pixels == rgb);
  }
  // A wide image whose rows span several stored blocks.
  std::vector<uint8_t> big(size_t(3 * 300 * 300));
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i % 251);
  const std::string p2 = encode_rgb_png_stored(big.data(), 300, 300);
  const Image b2 = decode_image(reinterpret_cast<const uint8_t*>(p2.data()), p2.size(), "big.png");
  CHECK(b2.pixels == big);
  CHECK_THROWS_WITH_AS(encode_rgb_png(rgb.data(), 0, 3), doctest::Contains("encode_rgb_png: expected 1..65535"),
                       std::invalid_argument);
}

TEST_CASE("make-scenes files read back: COCO JSON = the scenes, ADE20k files in place, AP = 1, mIoU = 1") {
  if (!have_jpeg_encoder()) {
    MESSAGE("skipped: built without stb_image_write (no JPEG encoder)");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("rv_scenes_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const SceneGenerator train = generator(128, 0), val = generator(128, 1);
  const SceneSetReport rep = write_scene_sets(train, val, {.out_dir = dir.string(), .train_images = 14, .val_images = 6, .seed = 9});
  CHECK(rep.images[0] == 14);
  CHECK(rep.images[1] == 6);
  for (int split = 0; split < 2; ++split) {
    const SceneGenerator& gen = split == 0 ? train : val;
    const std::string name = split == 0 ? "train2017" : "val2017";
    const CocoInstances coco = CocoInstances::read((dir / "coco/annotations" / ("instances_" + name + ".json")).string());
    REQUIRE(int64_t(coco.images().size()) == rep.images[split]);
    REQUIRE(int64_t(coco.annotations().size()) == rep.annotations[split]);
    REQUIRE(coco.category_ids() == std::vector<int64_t>(kSceneCategoryIds.begin(), kSceneCategoryIds.end()));
    CHECK(coco.categories()[9].name == "Ankle boot");
    int64_t crowd = 0;
    std::vector<CocoDetection> perfect;
    SegAreas areas(10);
    // The JSON's segmentation field is not kept by the reader: read it here.
    std::istringstream js(slurp(dir / "coco/annotations" / ("instances_" + name + ".json")));
    for (size_t i = 0; i < coco.images().size(); ++i) {
      const CocoImage& im = coco.images()[i];
      const Scene s = gen.make(9, split, int64_t(i));
      CHECK(im.id == int64_t(i) + 1);
      CHECK(im.width == s.width);
      CHECK(im.height == s.height);
      const fs::path jpg = dir / "coco" / name / im.file_name;
      REQUIRE(fs::exists(jpg));
      CHECK(slurp(jpg).substr(0, 2) == "\xff\xd8");
      char stem[32];
      std::snprintf(stem, sizeof stem, split == 0 ? "ADE_train_%08zu" : "ADE_val_%08zu", i + 1);
      const std::string ade_split = split == 0 ? "training" : "validation";
      CHECK(slurp(dir / "ADEChallengeData2016/images" / ade_split / (std::string(stem) + ".jpg")) == slurp(jpg));
      CHECK(slurp(dir / "ADEChallengeData2016/annotations" / ade_split / (std::string(stem) + ".png")).substr(1, 3) == "PNG");
      const auto& anns = coco.annotations_of(int64_t(i));
      REQUIRE(anns.size() == s.objects.size());
      for (size_t k = 0; k < anns.size(); ++k) {
        const CocoAnnotation& a = coco.annotations()[size_t(anns[k])];
        const SceneObject& o = s.objects[k];
        CHECK(a.category_id == kSceneCategoryIds[size_t(o.label)]);
        CHECK(coco.label_of(a.category_id) == o.label);
        CHECK(a.bbox == std::array<double, 4>{double(o.box[0]), double(o.box[1]), double(o.box[2]), double(o.box[3])});
        CHECK(a.bbox[0] + a.bbox[2] <= double(s.width));
        CHECK(a.bbox[1] + a.bbox[3] <= double(s.height));
        CHECK(a.area == double(o.area));
        CHECK(a.iscrowd == o.crowd);
        crowd += a.iscrowd;
        if (!a.iscrowd) perfect.push_back({im.id, a.category_id, a.bbox, 1.0});
      }
      // A perfect segmentation: the label map against itself, after ADE's label shift.
      Tensor lab = zeros({s.height, s.width}, DType::u8);
      std::copy(s.label_map.begin(), s.label_map.end(), lab.data<uint8_t>());
      const Tensor reduced = reduce_zero_label(lab);
      areas += seg_areas(reduced, reduced, 10);
    }
    CHECK(crowd == rep.crowd[split]);
    const CocoBboxResult r = coco_evaluate_bbox(coco.image_ids(), coco.category_ids(), coco.ground_truth(), perfect);
    CHECK(r.stats[0] == doctest::Approx(1).epsilon(1e-12));
    CHECK(r.stats[8] == 1);
    CHECK(seg_metrics(areas).miou == 1);
  }
  // The RLE masks in the JSON are the scenes' masks (checked through nlohmann directly).
  {
    const std::string text = slurp(dir / "coco/annotations/instances_train2017.json");
    const size_t p = text.find("\"segmentation\":{\"size\":[");
    REQUIRE(p != std::string::npos);
    const Scene s = train.make(9, 0, 0);
    if (!s.objects.empty()) {
      std::vector<int64_t> counts = mask_to_rle(s.objects[0].mask, s.height, s.width);
      std::string want = "\"counts\":[";
      for (size_t k = 0; k < counts.size(); ++k) {
        if (k) want += ',';
        want += std::to_string(counts[k]);
      }
      CHECK(text.find(want + "]") != std::string::npos);
    }
  }
  // Same seed, same bytes.
  const fs::path dir2 = dir.string() + "_again";
  write_scene_sets(train, val, {.out_dir = dir2.string(), .train_images = 14, .val_images = 6, .seed = 9});
  CHECK(slurp(dir / "coco/annotations/instances_train2017.json") == slurp(dir2 / "coco/annotations/instances_train2017.json"));
  CHECK(slurp(dir / "coco/val2017/000000000003.jpg") == slurp(dir2 / "coco/val2017/000000000003.jpg"));
  CHECK(slurp(dir / "ADEChallengeData2016/annotations/training/ADE_train_00000005.png") ==
        slurp(dir2 / "ADEChallengeData2016/annotations/training/ADE_train_00000005.png"));
  fs::remove_all(dir);
  fs::remove_all(dir2);
}
