// COCO box metrics (data/metrics/coco_bbox.h) on cases small enough to work out by hand: a
// perfect detection, a crowd region, the maxDets cut, the optional ignore field, an empty
// evaluation, the printed summary and the validation errors. The comparison with pycocotools
// on realistic data is tests/fixtures/test_coco_bbox.cpp.
#include <cmath>

#include "data/metrics/coco_bbox.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

CocoGroundTruth gt(int64_t image, int64_t cat, std::array<double, 4> b, bool crowd = false) {
  return {image, cat, b, b[2] * b[3], crowd, false};
}
CocoDetection det(int64_t image, int64_t cat, std::array<double, 4> b, double score) { return {image, cat, b, score}; }

}  // namespace

TEST_CASE("a perfect detection: AP and AR 1 where there is ground truth, -1 where there is none") {
  // a medium box (40 x 40 = 1600)
  CocoBboxResult r = coco_evaluate_bbox({1}, {5}, {gt(1, 5, {10, 10, 40, 40})}, {det(1, 5, {10, 10, 40, 40}, 0.9)});
  // Precision is TP / (TP + FP + 2^-52) as in pycocotools, so "1" is 1 - 2^-52: Approx for AP.
  const std::array<double, 12> want = {1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1};
  for (size_t i = 0; i < 12; ++i) {
    INFO(std::string(CocoBboxResult::kNames[i]));
    CHECK(r.stats[i] == doctest::Approx(want[i]).epsilon(1e-12));
  }
  CHECK(r.stats[8] == 1);  // recall is exact
  REQUIRE(r.per_category_ap.size() == 1);
  CHECK(r.per_category_ap[0] == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("a shifted detection: matched at the IoU thresholds it reaches, an FP at the others") {
  // IoU = (30 * 40) / (2 * 1600 - 1200) = 0.6: a match at .50, .55, .60 (>= is a match)
  CocoBboxResult r = coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, 40, 40})}, {det(1, 1, {10, 0, 40, 40}, 0.5)});
  CHECK(r.stats[1] == doctest::Approx(1));         // AP50
  CHECK(r.stats[2] == 0);                          // AP75
  CHECK(r.stats[0] == doctest::Approx(3.0 / 10));  // 3 of 10 thresholds
  CHECK(r.stats[8] == doctest::Approx(3.0 / 10));  // AR100
}

TEST_CASE("a crowd region: detections inside it are ignored, neither TP nor FP, however many") {
  std::vector<CocoGroundTruth> g = {gt(1, 1, {0, 0, 20, 20}), gt(1, 1, {100, 100, 200, 200}, /*crowd=*/true)};
  std::vector<CocoDetection> d = {det(1, 1, {0, 0, 20, 20}, 0.5)};
  for (int i = 0; i < 5; ++i) d.push_back(det(1, 1, {110.0 + 20 * i, 120, 30, 30}, 0.9));  // inside: IoU 1 by det area
  CocoBboxResult r = coco_evaluate_bbox({1}, {1}, g, d);
  CHECK(r.stats[0] == doctest::Approx(1));  // the higher-scored crowd detections cost no precision
  CHECK(r.stats[8] == 1);
}

// The two matching rules the random fixtures cannot tell apart (numbers from pycocotools 2.0.11).
TEST_CASE("equal IoU with two ground truths: the later one is taken") {
  // d1 has IoU 0.6 with both boxes and takes the second, so d2, which fits only the second, is
  // a false positive; taking the first would make both true positives.
  CocoBboxResult r = coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, 20, 20}), gt(1, 1, {10, 0, 20, 20})},
                                        {det(1, 1, {5, 0, 20, 20}, 0.9), det(1, 1, {10, 0, 20, 20}, 0.8)});
  const std::array<double, 12> pycocotools = {0.32821782178217823, 0.5049504950495048, 0.2524752475247525,
                                              0.32821782178217823, -1, -1, 0.15, 0.5, 0.5, 0.5, -1, -1};
  for (size_t i = 0; i < 12; ++i) CHECK(r.stats[i] == doctest::Approx(pycocotools[i]).epsilon(1e-12));
}

TEST_CASE("a detection holding a regular ground truth does not move to a better-fitting crowd") {
  // IoU 0.905 with the box, 1.0 with the crowd around it (over the detection's area): the box wins.
  CocoBboxResult r = coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, 40, 40}), gt(1, 1, {0, 0, 200, 200}, true)},
                                        {det(1, 1, {2, 0, 40, 40}, 0.9)});
  const std::array<double, 12> pycocotools = {0.8999999999999999, 0.9999999999999999, 0.9999999999999999, -1,
                                              0.8999999999999999, -1, 0.9, 0.9, 0.9, -1, 0.9, -1};
  for (size_t i = 0; i < 12; ++i) CHECK(r.stats[i] == doctest::Approx(pycocotools[i]).epsilon(1e-12));
}

TEST_CASE("only the 100 best-scored detections of an image and category count") {
  std::vector<CocoDetection> d;
  for (int i = 0; i < 100; ++i) d.push_back(det(1, 1, {500, 500, 10, 10}, 0.9));  // 100 false positives
  d.push_back(det(1, 1, {0, 0, 50, 50}, 0.1));                                      // the hit, 101st by score
  CocoBboxResult r = coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, 50, 50})}, d);
  CHECK(r.stats[8] == 0);  // AR100: cut off
  d.erase(d.begin());      // 99 false positives: now it is the 100th
  r = coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, 50, 50})}, d);
  CHECK(r.stats[8] == 1);
  CHECK(r.stats[7] == 0);  // AR10
}

TEST_CASE("the ignore field: no effect by default (as pycocotools), honoured on request") {
  CocoGroundTruth a = gt(1, 1, {0, 0, 40, 40}), b = gt(1, 1, {100, 100, 40, 40});
  b.ignore = true;
  std::vector<CocoDetection> d = {det(1, 1, {100, 100, 40, 40}, 0.9)};  // finds b only
  CocoBboxResult plain = coco_evaluate_bbox({1}, {1}, {a, b}, d);
  CHECK(plain.stats[0] == doctest::Approx(51.0 / 101));  // recall 1/2: precision 1 at 51 of 101 points
  CHECK(plain.stats[8] == doctest::Approx(0.5));
  CocoBboxResult honoured = coco_evaluate_bbox({1}, {1}, {a, b}, d, {.use_ignore_field = true});
  CHECK(honoured.stats[0] == 0);  // the match on b is ignored; a is missed
  CHECK(honoured.stats[8] == 0);
}

TEST_CASE("nothing to evaluate gives -1 everywhere; detections alone give 0") {
  CocoBboxResult none = coco_evaluate_bbox({1, 2}, {1}, {}, {});
  for (double s : none.stats) CHECK(s == -1);
  CocoBboxResult no_images = coco_evaluate_bbox({}, {}, {}, {});
  for (double s : no_images.stats) CHECK(s == -1);
  CocoBboxResult fp = coco_evaluate_bbox({1, 2}, {1, 2}, {gt(1, 1, {0, 0, 10, 10})}, {det(2, 2, {0, 0, 10, 10}, 1)});
  CHECK(fp.per_category_ap == std::vector<double>{0.0, -1.0});  // category 2 has no ground truth
}

TEST_CASE("the summary prints as pycocotools does") {
  CocoBboxResult r = coco_evaluate_bbox({1}, {5}, {gt(1, 5, {10, 10, 40, 40})}, {det(1, 5, {10, 10, 40, 40}, 0.9)});
  const std::string s = r.summary();
  CHECK(s.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000\n") == 0);
  CHECK(s.find(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000\n") != std::string::npos);
  CHECK(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n") != std::string::npos);
}

TEST_CASE("invalid input is refused, naming the item") {
  auto g = gt(1, 1, {0, 0, 10, 10});
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {g}, {det(3, 1, {0, 0, 1, 1}, 1)}),
                       "coco_evaluate_bbox: detection 0 has image_id 3, which is not among the 1 images", std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {g}, {det(1, 0, {0, 0, 1, 1}, 1)}),
                       doctest::Contains("detection 0 has category_id 0, which is not among the 1 categories (are labels "
                                         "mapped back to the data set's category ids?)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {g, gt(2, 1, {0, 0, 1, 1})}, {}),
                       doctest::Contains("ground truth 1 has image_id 2"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {gt(1, 1, {0, 0, -1, 1})}, {}),
                       "coco_evaluate_bbox: ground truth 0 has a negative bbox width or height", std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {g}, {det(1, 1, {0, 0, 1, 1}, std::nan(""))}),
                       "coco_evaluate_bbox: detection 0 has a NaN score", std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {1}, {g}, {det(1, 1, {0, HUGE_VAL, 1, 1}, 1)}),
                       "coco_evaluate_bbox: detection 0 has a non-finite bbox value", std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1, 1}, {1}, {}, {}), "coco_evaluate_bbox: image id 1 is listed twice",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(coco_evaluate_bbox({1}, {4, 2, 4}, {}, {}), "coco_evaluate_bbox: category id 4 is listed twice",
                       std::invalid_argument);
}
