// scenes.h: synthetic "scenes" for detection and segmentation: Fashion-MNIST items pasted at
// random scales and places on textured backgrounds, with exact instance masks, from which
// `ropevit make-scenes` writes a COCO-format and an ADE20k-format data set (data/scene_files.h).
//
//   SceneGenerator gen(items_u8, labels_i64, {.size = 256});
//   Scene s = gen.make(seed, /*split=*/0, /*index=*/7);   // a pure function of (seed, split, index)
//
// A scene: an RGB image (H, W), H = W = size or one side shrunk to 3/4..1 of it; a label map
// (H, W) with 0 = background ("other") and class + 1 on the pixels of an item of that class;
// its objects, each with the mask it finally shows (later items cover earlier ones), the tight
// box of that mask (COCO x, y, w, h) and its pixel count (COCO's area).
// An item's mask is its foreground, the resized Fashion-MNIST pixels > kMaskThreshold; its
// colour is a random tint blended over the background with the pixel value as opacity.
// About one scene in ten has no items (images without annotations, as COCO has), and about one
// in six gets a crowd group: 3..5 small items of one class close together, annotated as a
// single iscrowd region (their union).
// All randomness comes from Generator(seed, stream(split, index)), so a scene does not depend on
// which others are made, or in what order or on how many threads.
#pragma once
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rv::data {

struct SceneObject {
  int64_t label = 0;               // class 0..9 (Fashion-MNIST's)
  bool crowd = false;              // a crowd group's union
  std::array<int64_t, 4> box{};    // x, y, w, h of the visible mask, in whole pixels
  int64_t area = 0;                // visible mask pixels
  std::vector<uint8_t> mask;       // (H, W) 0 / 1, the visible pixels
};

struct Scene {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;        // (H, W, 3)
  std::vector<uint8_t> label_map;  // (H, W): 0 background, class + 1 on items
  std::vector<SceneObject> objects;
};

struct SceneOptions {
  int64_t size = 256;       // the longer side
  int64_t max_items = 6;    // per scene (not counting a crowd group)
  int64_t min_item = 24;    // the side an item is scaled to: [min_item, size / 2]
};

class SceneGenerator {
 public:
  static constexpr int kMaskThreshold = 48;  // item pixel > this: foreground (of 0..255)

  // items: u8 (N, h, w) grey images; labels: i64 (N,) in 0..9.
  SceneGenerator(Tensor items, Tensor labels, SceneOptions options);
  Scene make(uint64_t seed, int64_t split, int64_t index) const;
  const SceneOptions& options() const { return opt_; }

 private:
  Tensor items_, labels_;
  SceneOptions opt_;
};

// Stand-in items where Fashion-MNIST is not installed (and for tests): n grey 28x28 images of
// ten simple shapes, class k = shape k (disc, square, triangle, ring, plus, horizontal bar,
// vertical bar, X, frame, half disc) at a random size and place; labels cycle 0..9.
// Returns {items u8 (n, 28, 28), labels i64 (n,)}.
std::pair<Tensor, Tensor> shape_items(int64_t n, uint64_t seed);

// COCO-like category ids of the 10 classes: sorted, with gaps, so that a reader that forgets
// the id -> label map fails visibly.
inline constexpr std::array<int64_t, 10> kSceneCategoryIds = {1, 2, 4, 5, 7, 9, 11, 14, 16, 20};

}  // namespace rv::data
