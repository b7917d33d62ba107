// coco_fuzz_check.h: the property the COCO JSON fuzzer checks on every input, shared by the
// libFuzzer target (fuzz_coco.cpp) and the CTest that replays the corpus without clang
// (tests/unit/test_coco.cpp).
//
// For any bytes: CocoInstances::parse either throws std::runtime_error or returns a file whose
// invariants hold: categories sorted by unique id and the label map a bijection; every
// annotation on an existing image and category, with finite w, h >= 0 and area >= 0; targets()
// of every image gives x2 >= x1, y2 >= y1 boxes with labels in range; the training images are
// a subset in order; ground_truth() has one entry per annotation. Returns "" when all holds.
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "data/coco.h"

namespace rv::fuzz {

inline std::string coco_check_one(const uint8_t* data, size_t size) {
  data::CocoInstances c;
  try {
    c = data::CocoInstances::parse(std::string(reinterpret_cast<const char*>(data), size), "<fuzz>");
  } catch (const std::runtime_error&) {
    return "";  // a clean refusal
  }
  const auto& cats = c.categories();
  for (size_t k = 0; k < cats.size(); ++k) {
    if (k > 0 && cats[k - 1].id >= cats[k].id) return "categories not sorted by unique id";
    if (c.label_of(cats[k].id) != int64_t(k) || c.category_id_of(int64_t(k)) != cats[k].id) return "label map not a bijection";
  }
  for (const auto& a : c.annotations()) {
    if (c.images()[size_t(c.image_index_of(a.image_id))].id != a.image_id) return "image index map wrong";
    (void)c.label_of(a.category_id);  // throws out_of_range (a bug here) when unknown
    for (double v : a.bbox)
      if (!std::isfinite(v)) return "non-finite bbox accepted";
    if (a.bbox[2] < 0 || a.bbox[3] < 0 || !(a.area >= 0)) return "negative size or area accepted";
  }
  size_t total = 0;
  for (size_t i = 0; i < c.images().size(); ++i) {
    if (c.images()[i].width <= 0 || c.images()[i].height <= 0) return "non-positive image size accepted";
    total += c.annotations_of(int64_t(i)).size();
    const data::CocoTargets t = c.targets(int64_t(i));
    if (t.boxes.size() != t.labels.size()) return "boxes and labels differ in count";
    for (size_t k = 0; k < t.boxes.size(); ++k) {
      if (t.boxes[k][2] < t.boxes[k][0] || t.boxes[k][3] < t.boxes[k][1]) return "inverted target box";
      if (t.labels[k] < 0 || t.labels[k] >= c.num_classes()) return "target label out of range";
    }
  }
  if (total != c.annotations().size()) return "annotations_of does not cover every annotation once";
  int64_t prev = -1;
  for (int64_t i : c.train_image_indices()) {
    if (i <= prev || i >= int64_t(c.images().size())) return "train_image_indices not an ordered subset";
    prev = i;
  }
  if (c.ground_truth().size() != c.annotations().size()) return "ground_truth size differs";
  return "";
}

}  // namespace rv::fuzz
