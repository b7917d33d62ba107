// scene_files.h: the synthetic scenes (data/scenes.h) written as a real COCO 2017 detection set
// and a real ADE20k (ADEChallengeData2016) segmentation set, the files `ropevit make-scenes`
// makes. The same scenes go into both, so one can be checked against the other.
//
//   DIR/coco/train2017/000000000001.jpg ...            DIR/coco/val2017/...
//   DIR/coco/annotations/instances_train2017.json      instances_val2017.json
//   DIR/ADEChallengeData2016/images/training/ADE_train_00000001.jpg ...     images/validation/ADE_val_...
//   DIR/ADEChallengeData2016/annotations/training/ADE_train_00000001.png ... annotations/validation/...
//
// COCO: image ids 1..N, file_name the 12-digit id; one annotation per visible object with
// bbox [x, y, w, h] of its visible mask, area = its pixel count, iscrowd 0 (1 for a crowd group),
// segmentation as an uncompressed RLE {"size": [H, W], "counts": [...]} (column-major, starting
// with a run of zeros: pycocotools' format; crowd regions in COCO use the same); categories =
// the 10 Fashion-MNIST classes with the gapped ids of kSceneCategoryIds, supercategory "fashion".
// ADE20k: JPEG images and 8-bit grey PNG label maps, 0 = background ("other": ignored once
// reduce_zero_label shifts it), class + 1 on item pixels.
// Train scenes paste items of Fashion-MNIST's train split (split 0), val scenes those of its test
// split (split 1), so no item is in both. Every file is a function of (seed, split, index).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/scenes.h"

namespace rv::data {

struct SceneSetOptions {
  std::string out_dir;
  int64_t train_images = 200, val_images = 50;
  uint64_t seed = 0;
  int jpeg_quality = 90;
};

struct SceneSetReport {
  int64_t images[2] = {0, 0};           // train, val
  int64_t annotations[2] = {0, 0};      // of which crowd:
  int64_t crowd[2] = {0, 0};
  int64_t empty_images[2] = {0, 0};     // without any annotation
  std::vector<std::string> files;       // the annotation files and folders written
};

// Writes both sets; `train` pastes training items, `val` evaluation items. Throws
// std::runtime_error naming a file that cannot be written.
SceneSetReport write_scene_sets(const SceneGenerator& train, const SceneGenerator& val, const SceneSetOptions& opt);

// COCO's uncompressed RLE of an (H, W) 0/1 mask: run lengths in column-major order, the first
// run counting zeros (0 when the first pixel is set).
std::vector<int64_t> mask_to_rle(const std::vector<uint8_t>& mask, int64_t height, int64_t width);
// And back: (H, W) 0/1, row-major. Throws std::invalid_argument when the counts do not add up to H * W.
std::vector<uint8_t> rle_to_mask(const std::vector<int64_t>& counts, int64_t height, int64_t width);

}  // namespace rv::data
