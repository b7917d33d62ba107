// The COCO instances reader (data/coco.h) on small hand-made JSON: the fields it keeps, the
// category map, mmdet's training filters and filter_empty_gt, what coco_evaluate_bbox gets, and
// one error per malformed field (each naming the file, the item and the key); the fuzz corpus
// (tests/fuzz/corpus_coco) and byte mutations of it through the fuzzer's property check.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/coco.h"
#include "tests/fuzz/coco_fuzz_check.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// Three images (one without annotations, one small), categories with gapped ids out of order.
const char* kGood = R"({
  "info": {"year": 2017}, "licenses": [],
  "images": [
    {"id": 42, "file_name": "000000000042.jpg", "width": 100, "height": 80, "license": 3},
    {"id": 7, "file_name": "000000000007.jpg", "width": 64, "height": 64},
    {"id": 9, "file_name": "000000000009.jpg", "width": 20, "height": 200}
  ],
  "categories": [
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car"}
  ],
  "annotations": [
    {"id": 1, "image_id": 42, "category_id": 18, "bbox": [10, 20, 30, 40], "area": 900.5, "iscrowd": 0, "segmentation": [[10, 20, 40, 20, 40, 60]]},
    {"id": 2, "image_id": 42, "category_id": 1, "bbox": [90, 70, 50, 50], "area": 120, "iscrowd": 1},
    {"id": 3, "image_id": 42, "category_id": 3, "bbox": [100, 0, 10, 10], "area": 100},
    {"id": 4, "image_id": 42, "category_id": 3, "bbox": [0, 0, 0.5, 10], "area": 5},
    {"id": 5, "image_id": 42, "category_id": 3, "bbox": [5, 5, 10, 10], "area": 0},
    {"id": 6, "image_id": 42, "category_id": 1, "bbox": [-5, -5, 20.5, 10], "area": 30, "iscrowd": false},
    {"id": 7, "image_id": 9, "category_id": 3, "bbox": [0, 0, 5, 5], "area": 25}
  ]
})";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const size_t p = text.find(from);
  REQUIRE_MESSAGE(p != std::string::npos, from);
  return text.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("a good file: images, sorted categories, annotations per image") {
  const CocoInstances c = CocoInstances::parse(kGood, "good.json");
  REQUIRE(c.images().size() == 3);
  CHECK(c.images()[0].id == 42);
  CHECK(c.images()[0].file_name == "000000000042.jpg");
  CHECK(c.images()[0].width == 100);
  CHECK(c.images()[0].height == 80);
  REQUIRE(c.num_classes() == 3);
  CHECK(c.category_ids() == std::vector<int64_t>{1, 3, 18});
  CHECK(c.categories()[2].name == "dog");
  CHECK(c.categories()[2].supercategory == "animal");
  CHECK(c.categories()[1].supercategory.empty());
  CHECK(c.label_of(1) == 0);
  CHECK(c.label_of(3) == 1);
  CHECK(c.label_of(18) == 2);
  for (int64_t k = 0; k < 3; ++k) CHECK(c.label_of(c.category_id_of(k)) == k);
  CHECK_THROWS_WITH_AS(c.label_of(2), "good.json: category id 2 is not among the categories", std::out_of_range);
  CHECK_THROWS_AS(c.category_id_of(3), std::out_of_range);
  CHECK(c.describe_categories() == "label 0 = id 1 'person', label 1 = id 3 'car', label 2 = id 18 'dog'");
  CHECK(c.image_index_of(9) == 2);
  CHECK_THROWS_AS(c.image_index_of(8), std::out_of_range);
  CHECK(c.annotations_of(0) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(c.annotations_of(1).empty());
  CHECK(c.annotations_of(2) == std::vector<int64_t>{6});
  const CocoAnnotation& a = c.annotations()[0];
  CHECK(a.bbox == std::array<double, 4>{10, 20, 30, 40});
  CHECK(a.area == 900.5);
  CHECK(!a.iscrowd);
  CHECK(c.annotations()[1].iscrowd);
}

TEST_CASE("training targets: mmdet's filters, xyxy boxes, crowd boxes apart") {
  const CocoInstances c = CocoInstances::parse(kGood, "good.json");
  const CocoTargets t = c.targets(0);
  // kept: 1 (dog), 6 (person, partly outside: kept as given, x1 < 0); crowd 2 apart.
  // dropped: 3 (outside the 100 px width), 4 (w < 1), 5 (area 0).
  REQUIRE(t.boxes.size() == 2);
  CHECK(t.boxes[0] == std::array<double, 4>{10, 20, 40, 60});
  CHECK(t.labels[0] == 2);
  CHECK(t.boxes[1] == std::array<double, 4>{-5, -5, 15.5, 5});
  CHECK(t.labels[1] == 0);
  REQUIRE(t.crowd_boxes.size() == 1);
  CHECK(t.crowd_boxes[0] == std::array<double, 4>{90, 70, 140, 120});
  CHECK(c.targets(1).boxes.empty());
  // filter_empty_gt: image 7 has no annotation; image 9 is narrower than 32 px.
  CHECK(c.train_image_indices() == std::vector<int64_t>{0});
  CHECK(c.train_image_indices(16) == std::vector<int64_t>{0, 2});
  CHECK(c.train_image_indices(0) == std::vector<int64_t>{0, 2});
}

TEST_CASE("evaluation: every image and annotation goes to coco_evaluate_bbox; a perfect answer scores 1") {
  const CocoInstances c = CocoInstances::parse(kGood, "good.json");
  CHECK(c.image_ids() == std::vector<int64_t>{42, 7, 9});
  const std::vector<CocoGroundTruth> g = c.ground_truth();
  REQUIRE(g.size() == 7);
  CHECK(g[1].iscrowd);
  CHECK(g[0].area == 900.5);
  std::vector<CocoDetection> d;
  for (const CocoGroundTruth& x : g)
    if (!x.iscrowd) d.push_back({x.image_id, x.category_id, x.bbox, 1.0});
  const CocoBboxResult r = coco_evaluate_bbox(c.image_ids(), c.category_ids(), g, d);
  CHECK(r.stats[0] == doctest::Approx(1).epsilon(1e-12));
  CHECK(r.stats[8] == 1);
}

TEST_CASE("an empty file (no images) is fine; so is a missing supercategory and iscrowd") {
  const CocoInstances c = CocoInstances::parse(R"({"images": [], "annotations": [], "categories": []})", "e.json");
  CHECK(c.images().empty());
  CHECK(c.num_classes() == 0);
  CHECK(c.train_image_indices().empty());
}

TEST_CASE("every malformed field: an error naming the file, the item and the key") {
  auto err = [](const std::string& text) -> std::string {
    try {
      CocoInstances::parse(text, "bad.json");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  CHECK(err("{") .rfind("bad.json: not valid JSON", 0) == 0);
  CHECK(err("[]") == "bad.json: expected a JSON object at the top, got a array");
  CHECK(err(R"({"images": [], "annotations": []})") ==
        "bad.json: 'categories': missing (a COCO instances file has images, annotations and categories)");
  CHECK(err(R"({"images": {}, "annotations": [], "categories": []})") == "bad.json: 'images': expected a list, got a object");
  const std::string g = kGood;
  CHECK(err(with(g, R"("id": 42, )", "")) == "bad.json: images[0]: 'id': missing");
  CHECK(err(with(g, R"("id": 42,)", R"("id": "42",)")) == "bad.json: images[0]: 'id': expected an integer, got \"42\"");
  CHECK(err(with(g, R"("id": 42,)", R"("id": 4.5,)")) == "bad.json: images[0]: 'id': expected an integer, got 4.5");
  CHECK(err(with(g, R"("id": 7,)", R"("id": 42,)")) == "bad.json: images[1] (id 42): 'id': image id 42 appears twice");
  CHECK(err(with(g, R"("file_name": "000000000007.jpg")", R"("file_name": 7)")) ==
        "bad.json: images[1] (id 7): 'file_name': expected a string, got 7");
  CHECK(err(with(g, R"("file_name": "000000000007.jpg")", R"("file_name": "")")) ==
        "bad.json: images[1] (id 7): 'file_name': empty");
  CHECK(err(with(g, R"("width": 64)", R"("width": 0)")) == "bad.json: images[1] (id 7): 'width': expected > 0, got 0");
  CHECK(err(with(g, R"("height": 200)", R"("height": -1)")) == "bad.json: images[2] (id 9): 'height': expected > 0, got -1");
  CHECK(err(with(g, R"("height": 200)", R"("hight": 200)")) == "bad.json: images[2] (id 9): 'height': missing");
  CHECK(err(with(g, R"({"id": 7, "file_name")", R"(3, {"id": 7, "file_name")")) == "bad.json: images[1]: expected an object, got 3");
  CHECK(err(with(g, R"({"id": 3, "name": "car"})", R"({"id": 18, "name": "car"})")) ==
        "bad.json: categories[2] (id 18): 'id': category id 18 appears twice");
  CHECK(err(with(g, R"({"id": 3, "name": "car"})", R"({"id": 3})")) == "bad.json: categories[2] (id 3): 'name': missing");
  CHECK(err(with(g, R"("supercategory": "animal")", R"("supercategory": null)")) ==
        "bad.json: categories[0] (id 18): 'supercategory': expected a string, got null");
  CHECK(err(with(g, R"({"id": 2, "image_id": 42)", R"({"id": 1, "image_id": 42)")) ==
        "bad.json: annotations[1] (id 1): 'id': annotation id 1 appears twice");
  CHECK(err(with(g, R"("id": 7, "image_id": 9)", R"("id": 7, "image_id": 8)")) ==
        "bad.json: annotations[6] (id 7): 'image_id': 8 is not among the images");
  CHECK(err(with(g, R"("id": 7, "image_id": 9, "category_id": 3)", R"("id": 7, "image_id": 9, "category_id": 2)")) ==
        "bad.json: annotations[6] (id 7): 'category_id': 2 is not among the categories");
  CHECK(err(with(g, R"("id": 7, "image_id": 9, "category_id": 3)", R"("id": 7, "image_id": 9)")) ==
        "bad.json: annotations[6] (id 7): 'category_id': missing");
  CHECK(err(with(g, R"("bbox": [0, 0, 5, 5])", R"("bbox": [0, 0, 5])")) ==
        "bad.json: annotations[6] (id 7): 'bbox': expected 4 numbers [x, y, w, h], got 3 entries");
  CHECK(err(with(g, R"("bbox": [0, 0, 5, 5])", R"("bbox": "0 0 5 5")")) ==
        "bad.json: annotations[6] (id 7): 'bbox': expected 4 numbers [x, y, w, h], got \"0 0 5 5\"");
  CHECK(err(with(g, R"("bbox": [0, 0, 5, 5])", R"("bbox": [0, 0, "5", 5])")) ==
        "bad.json: annotations[6] (id 7): 'bbox': expected a number, got \"5\"");
  CHECK(err(with(g, R"("bbox": [0, 0, 5, 5])", R"("bbox": [0, 0, -5, 5])")) ==
        "bad.json: annotations[6] (id 7): 'bbox': expected w, h >= 0, got [0,0,-5,5]");
  // JSON has no infinity; nlohmann reads an overflowing literal as inf, which the reader refuses.
  const std::string inf = err(with(g, R"("bbox": [0, 0, 5, 5])", R"("bbox": [0, 0, 1e999, 5])"));
  CHECK_MESSAGE((inf.find("'bbox': expected a finite number") != std::string::npos ||
                 inf.rfind("bad.json: not valid JSON", 0) == 0), inf);
  CHECK(err(with(g, R"("bbox": [0, 0, 5, 5], "area": 25)", R"("bbox": [0, 0, 5, 5])")) ==
        "bad.json: annotations[6] (id 7): 'area': missing");
  CHECK(err(with(g, R"("area": 25)", R"("area": -25)")) == "bad.json: annotations[6] (id 7): 'area': expected >= 0, got -25");
  CHECK(err(with(g, R"("area": 25)", R"("area": null)")) == "bad.json: annotations[6] (id 7): 'area': expected a number, got null");
  CHECK(err(with(g, R"("area": 120, "iscrowd": 1)", R"("area": 120, "iscrowd": 2)")) ==
        "bad.json: annotations[1] (id 2): 'iscrowd': expected 0 or 1, got 2");
  CHECK(err(with(g, R"("area": 120, "iscrowd": 1)", R"("area": 120, "iscrowd": "1")")) ==
        "bad.json: annotations[1] (id 2): 'iscrowd': expected 0 or 1, got \"1\"");
}

TEST_CASE("read: a missing file is named") {
  CHECK_THROWS_WITH_AS(CocoInstances::read("/nonexistent/instances_val2017.json"),
                       "/nonexistent/instances_val2017.json: cannot open the COCO annotation file", std::runtime_error);
}

TEST_CASE("fuzz corpus and its byte mutations: refused cleanly or accepted with every invariant") {
  const std::filesystem::path corpus = std::filesystem::path(RV_SOURCE_DIR) / "tests" / "fuzz" / "corpus_coco";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    const std::string bytes = ss.str();
    INFO("corpus file " << entry.path().filename().string());
    CHECK(rv::fuzz::coco_check_one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) == "");
    // Every byte replaced by a few others, and every prefix, as the fuzzer would try first.
    for (size_t i = 0; i < bytes.size(); ++i)
      for (char c : {'0', '-', '"', ']', '}', '9', 'e'}) {
        std::string m = bytes;
        m[i] = c;
        const std::string problem = rv::fuzz::coco_check_one(reinterpret_cast<const uint8_t*>(m.data()), m.size());
        if (!problem.empty()) FAIL_CHECK("byte " << i << " -> '" << c << "': " << problem);
      }
    ++files;
  }
  CHECK(files >= 5);
}
