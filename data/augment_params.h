// augment_params.h: the random geometry of augmentations, drawn from a Generator: where
// RandomResizedCrop crops and where RandomErasing erases. Geometry only (boxes in pixels), so
// the same draws serve float CHW tensors (tensor_transforms.h) and uint8 images alike.
//
// The rules are timm's (timm/data/transforms.py RandomResizedCrop.get_params, random_erasing.py
// RandomErasing._erase), with Python's random.uniform / random.randint replaced by draws from
// the Philox generator (random_draws.h) and Python's round() (half to even) kept.
#pragma once
#include <cstdint>
#include <optional>

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
};

// timm's RandomErasing._erase geometry for one box (max_count 1): with `probability`, up to
// `attempts` times draw an area and a log-uniform ratio, and accept a box strictly smaller
// than the image, placed uniformly. nullopt: no erasing this time.
std::optional<CropBox> random_erasing_params(int64_t H, int64_t W, Generator& gen,
                                             const RandomErasingOptions& opt = {});

}  // namespace rv::data
