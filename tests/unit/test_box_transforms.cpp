// Detection transforms (data/box_transforms.h): boxes follow the image exactly. Each box is drawn
// into the image as a rectangle of its own value; after a flip or crop, the extent of that value
// in the transformed image must be the transformed box (plain loops). Resize: mmcv's
// rescale_size numbers, and boxes scaled by the realised factors, then clipped. Errors name the op.
// (The resize's pixels against OpenCV: tests/fixtures/test_det_transforms.cpp.)
#include <map>

#include "data/box_transforms.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// A grey (H, W, 1) image with box k painted as value k + 1 (integer boxes, no overlap).
DetImage painted(int H, int W, const std::vector<Box>& boxes) {
  DetImage d;
  d.image = Image(H, W, 1);
  for (size_t k = 0; k < boxes.size(); ++k) {
    for (int y = int(boxes[k][1]); y < int(boxes[k][3]); ++y)
      for (int x = int(boxes[k][0]); x < int(boxes[k][2]); ++x) d.image.at(y, x, 0) = uint8_t(k + 1);
    d.labels.push_back(int64_t(k) * 10);
  }
  d.boxes = boxes;
  return d;
}

// value -> its extent x1 y1 x2 y2 (corner coordinates) in channel 0 of an image.
std::map<int, Box> extents(const Image& img) {
  std::map<int, Box> e;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const int v = img.at(y, x, 0);
      if (!v) continue;
      auto it = e.find(v);
      if (it == e.end()) e[v] = {double(x), double(y), double(x + 1), double(y + 1)};
      else it->second = {std::min(it->second[0], double(x)), std::min(it->second[1], double(y)),
                         std::max(it->second[2], double(x + 1)), std::max(it->second[3], double(y + 1))};
    }
  return e;
}

}  // namespace

TEST_CASE("flip: each box is its rectangle's new extent") {
  DetImage d = painted(13, 17, {{0, 0, 3, 5}, {10, 2, 17, 13}, {5, 6, 6, 7}});
  d.crowd_boxes = {{1, 1, 4, 2}};
  det_hflip_(d);
  const auto e = extents(d.image);
  REQUIRE(e.size() == 3);
  for (size_t k = 0; k < 3; ++k) CHECK(d.boxes[k] == e.at(int(k) + 1));
  CHECK(d.boxes[0] == Box{14, 0, 17, 5});
  CHECK(d.crowd_boxes[0] == Box{13, 1, 16, 2});
  CHECK(d.labels == std::vector<int64_t>{0, 10, 20});
  det_hflip_(d);  // twice: back where it was
  CHECK(d.boxes[1] == Box{10, 2, 17, 13});
}

TEST_CASE("crop: boxes shifted and clipped as their rectangles are; boxes left empty are dropped with their labels") {
  const DetImage d = painted(20, 30, {{2, 2, 8, 6}, {20, 10, 29, 19}, {12, 0, 14, 20}, {0, 15, 3, 20}});
  for (const CropBox& c : {CropBox{0, 0, 20, 30}, CropBox{3, 5, 12, 20}, CropBox{10, 13, 10, 17}, CropBox{0, 0, 1, 1}}) {
    INFO("crop top " << c.top << " left " << c.left << " " << c.height << "x" << c.width);
    const DetImage r = det_crop(d, c);
    CHECK(r.image.height == c.height);
    CHECK(r.image.width == c.width);
    const auto e = extents(r.image);
    REQUIRE(r.boxes.size() == e.size());
    size_t k = 0;
    for (const auto& [v, box] : e) {  // values in increasing order = original box order
      CHECK(r.boxes[k] == box);
      CHECK(r.labels[k] == int64_t(v - 1) * 10);
      ++k;
    }
  }
  // An RGB image crops every channel the same.
  DetImage t = d;
  t.image = Image(20, 30, 3);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 30; ++x)
      for (int c = 0; c < 3; ++c) t.image.at(y, x, c) = uint8_t(d.image.at(y, x, 0) + 10 * c);
  const DetImage tc = det_crop(t, {3, 5, 12, 20}), dc = det_crop(d, {3, 5, 12, 20});
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 20; ++x)
      for (int c = 0; c < 3; ++c) CHECK(tc.image.at(y, x, c) == dc.image.at(y, x, 0) + 10 * c);
  // A box with no area left inside the crop is dropped; one touching it from inside is kept.
  DetImage edge = painted(20, 30, {{0, 0, 5, 5}, {5, 5, 9, 9}});
  const DetImage ec = det_crop(edge, {5, 5, 10, 10});
  REQUIRE(ec.boxes.size() == 1);
  CHECK(ec.boxes[0] == Box{0, 0, 4, 4});
  CHECK_THROWS_WITH_AS(det_crop(d, {15, 0, 10, 5}),
                       "det_crop: box: expected inside the 20x30 image, got top 15 left 0 10x5", std::invalid_argument);
}

TEST_CASE("resize keeping the aspect ratio: mmcv's rescale_size, boxes by the realised factors") {
  CHECK(keep_ratio_size(480, 640, 1333, 800) == std::array<int64_t, 2>{800, 1067});
  CHECK(keep_ratio_size(427, 640, 1333, 800) == std::array<int64_t, 2>{800, 1199});
  CHECK(keep_ratio_size(640, 427, 800, 1333) == std::array<int64_t, 2>{1199, 800});  // the order of the scale does not matter
  CHECK(keep_ratio_size(100, 1000, 1333, 800) == std::array<int64_t, 2>{133, 1333});  // the long side binds
  CHECK_THROWS_AS(keep_ratio_size(0, 5, 10, 10), std::invalid_argument);
  const DetImage d = painted(30, 40, {{4, 6, 10, 20}, {0, 0, 40, 30}});
  const DetImage r = det_resize_keep_ratio(d, 100, 45);
  REQUIRE(r.image.height == 45);
  REQUIRE(r.image.width == 60);
  const double sx = 60.0 / 40, sy = 45.0 / 30;
  for (size_t k = 0; k < 2; ++k)
    for (int i = 0; i < 4; ++i) CHECK(r.boxes[k][size_t(i)] == d.boxes[k][size_t(i)] * (i % 2 ? sy : sx));
  CHECK(r.boxes[1] == Box{0, 0, 60, 45});  // the whole image stays the whole image
  // An integer upscale: the box's rectangle still has its box as the extent of its interior.
  const DetImage u = det_resize(painted(10, 10, {{2, 3, 6, 8}}), 20, 30);
  CHECK(u.boxes[0] == Box{6, 6, 18, 16});
  CHECK(u.image.at(7, 7, 0) == 1);  // inside
  CHECK(u.image.at(5, 4, 0) == 0);  // outside, beyond the bilinear blur
  // Boxes are clipped to the resized image (mmdet's clip_object_border).
  DetImage over = painted(10, 10, {{2, 3, 6, 8}});
  over.boxes[0] = {-1, 3, 11, 8};
  CHECK(det_resize(over, 20, 30).boxes[0] == Box{0, 6, 30, 16});
  DetImage bad = d;
  bad.labels.pop_back();
  CHECK_THROWS_WITH_AS(det_resize(bad, 5, 5), "det_resize: boxes and labels: expected as many, got 2 and 1",
                       std::invalid_argument);
}
