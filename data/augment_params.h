// augment_params.h: the random geometry of augmentations, drawn from a Generator: where
// RandomResizedCrop crops and where RandomErasing erases. Geometry only (boxes in pixels), so
// the same draws serve float CHW tensors (tensor_transforms.h, Fashion-MNIST) and the uint8
// ImageNet pipeline (image_pipeline.h, through RandomDraws::generator()) alike: the one
// CropBox and the one set of options for both.
//
// The rules are timm's (timm/data/transforms.py RandomResizedCrop.get_params, random_erasing.py
// RandomErasing._erase), with Python's random.uniform / random.randint replaced by draws from
// the Philox generator (random_draws.h) and Python's round() (half to even) kept.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/rng.h"

namespace rv::data {

// A rectangle of an image: rows top .. top + height - 1, columns left .. left + width - 1.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

struct RandomResizedCropOptions {
  double scale_min = 0.08, scale_max = 1.0;          // of the image's area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height, drawn log-uniformly
  int attempts = 10;
};

// timm's RandomResizedCrop.get_params on an H x W image: up to `attempts` times, draw an area
// fraction uniformly in [scale_min, scale_max] and a log-uniform aspect ratio, round the
// width and height, and accept if the box fits (and is not empty), placing it uniformly;
// otherwise fall back to the largest centred crop whose ratio lies in [ratio_min, ratio_max].
// Each attempt draws 2 numbers, an accepted one 2 more (top, then left).
CropBox random_resized_crop_params(int64_t H, int64_t W, Generator& gen, const RandomResizedCropOptions& opt = {});

// The centred h x w box of an H x W image (torchvision's center_crop offsets: floor of half
// the excess).
CropBox center_crop_box(int64_t H, int64_t W, int64_t h, int64_t w);

struct RandomErasingOptions {
  double probability = 0.25;                  // timm's --reprob
  double area_min = 0.02, area_max = 1.0 / 3.0;
  double ratio_min = 0.3, ratio_max = 1.0 / 0.3;  // height / width, drawn log-uniformly
  int attempts = 10;
  int min_count = 1, max_count = 1;  // boxes per image, uniform in [min, max] (drawn when they differ)
};

// timm's RandomErasing._erase geometry: with `probability`, `count` boxes (see above), each
// tried up to `attempts` times: an area fraction uniform in [area_min, area_max] of the image
// / count and a log-uniform ratio, accepted when strictly smaller than the image and placed
// uniformly. Empty: no erasing this time.
std::vector<CropBox> random_erasing_boxes(int64_t H, int64_t W, Generator& gen, const RandomErasingOptions& opt = {});
// The same for one box (min_count = max_count = 1, else an error). nullopt: no erasing.
std::optional<CropBox> random_erasing_params(int64_t H, int64_t W, Generator& gen,
                                             const RandomErasingOptions& opt = {});

}  // namespace rv::data
