// random_erasing.h: timm's RandomErasing fill on a normalised (C, H, W) float tensor, for the
// ImageNet pipeline (image_pipeline.h). The boxes are random_erasing_boxes (augment_params.h:
// timm's geometry, min_count / max_count included) on rd.generator(). Each is filled per `mode`:
//   constant: 0 (the mean after normalisation)   per_channel: one N(0,1) value per channel
//   pixel: N(0,1) per element (timm's default, --remode pixel)
#pragma once
#include <vector>

#include "data/augment_params.h"
#include "data/augment_random.h"
#include "engine/tensor.h"

namespace rv::data {

enum class EraseMode { constant, per_channel, pixel };
EraseMode erase_mode_from_name(const std::string& name);  // "const" | "rand" | "pixel" (timm's names)

// Fills the rectangles of `chw` (contiguous f32, modified in place); the fill values of the
// random modes come from `rd`.
void random_erasing_apply(Tensor& chw, const std::vector<CropBox>& boxes, EraseMode mode, RandomDraws& rd);

}  // namespace rv::data
