// random_erasing.h: timm's RandomErasing on a normalised (C, H, W) float tensor.
//
// With probability `probability`, `count` rectangles (count uniform in [min_count, max_count])
// are each tried up to 10 times: area uniform in [min_area, max_area] of the image / count,
// log-uniform aspect ratio; h = round(sqrt(area * aspect)), w = round(sqrt(area / aspect)), kept
// when h < H and w < W, placed uniformly. The rectangle is filled per `mode`:
//   constant: 0 (the mean after normalisation)   per_channel: one N(0,1) value per channel
//   pixel: N(0,1) per element (timm's default, --remode pixel)
#pragma once
#include <vector>

#include "data/augment.h"
#include "engine/tensor.h"

namespace rv::data {

enum class EraseMode { constant, per_channel, pixel };
EraseMode erase_mode_from_name(const std::string& name);  // "const" | "rand" | "pixel" (timm's names)

struct RandomErasingOptions {
  double probability = 0.25;
  double min_area = 0.02, max_area = 1.0 / 3.0;
  double min_aspect = 0.3, max_aspect = 1.0 / 0.3;
  EraseMode mode = EraseMode::pixel;
  int min_count = 1, max_count = 1;
};

// The rectangles to erase (none when the coin says no or no try fits).
std::vector<CropBox> random_erasing_params(int height, int width, const RandomErasingOptions& opt, RandomDraws& rd);
// Fills the rectangles of `chw` (contiguous f32, modified in place); the fill values of the
// random modes come from `rd`.
void random_erasing_apply(Tensor& chw, const std::vector<CropBox>& boxes, EraseMode mode, RandomDraws& rd);

}  // namespace rv::data
