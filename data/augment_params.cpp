// augment_params.cpp: RandomResizedCrop and RandomErasing boxes by timm's rules (see the header).
#include "data/augment_params.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "data/random_draws.h"

namespace rv::data {

namespace {

// Python's round() on a float: to the nearest integer, halves to even (the default FE_TONEAREST
// rounding mode of nearbyint).
int64_t py_round(double x) { return int64_t(std::nearbyint(x)); }

void check_image(int64_t H, int64_t W, const char* who) {
  if (H < 1 || W < 1)
    throw std::invalid_argument(std::string(who) + ": the image must be at least 1x1, got " + std::to_string(H) +
                                "x" + std::to_string(W));
}

}  // namespace

CropBox random_resized_crop_params(int64_t H, int64_t W, Generator& gen, const RandomResizedCropOptions& opt) {
  check_image(H, W, "random_resized_crop_params");
  if (!(opt.scale_min > 0 && opt.scale_min <= opt.scale_max))
    throw std::invalid_argument("random_resized_crop_params: expected 0 < scale_min <= scale_max, got (" +
                                std::to_string(opt.scale_min) + ", " + std::to_string(opt.scale_max) + ")");
  if (!(opt.ratio_min > 0 && opt.ratio_min <= opt.ratio_max))
    throw std::invalid_argument("random_resized_crop_params: expected 0 < ratio_min <= ratio_max, got (" +
                                std::to_string(opt.ratio_min) + ", " + std::to_string(opt.ratio_max) + ")");
  const double area = double(H) * double(W);
  const double log_lo = std::log(opt.ratio_min), log_hi = std::log(opt.ratio_max);
  for (int attempt = 0; attempt < opt.attempts; ++attempt) {
    const double target_area = area * draw_uniform(gen, opt.scale_min, opt.scale_max);
    const double aspect = std::exp(draw_uniform(gen, log_lo, log_hi));
    const int64_t w = py_round(std::sqrt(target_area * aspect));
    const int64_t h = py_round(std::sqrt(target_area / aspect));
    // timm accepts w <= W and h <= H; torchvision also asks for a non-empty box, which only
    // matters for tiny images and scales, and avoids an empty crop.
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const int64_t top = draw_int(gen, 0, H - h);
      const int64_t left = draw_int(gen, 0, W - w);
      return {top, left, h, w};
    }
  }
  // Fallback: the centred crop with the whole image's extent along one side, the ratio clamped.
  const double in_ratio = double(W) / double(H);
  int64_t w = W, h = H;
  if (in_ratio < opt.ratio_min) {
    h = std::max<int64_t>(1, py_round(double(w) / opt.ratio_min));
  } else if (in_ratio > opt.ratio_max) {
    w = std::max<int64_t>(1, py_round(double(h) * opt.ratio_max));
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

CropBox center_crop_box(int64_t H, int64_t W, int64_t h, int64_t w) {
  check_image(H, W, "center_crop_box");
  if (h < 1 || w < 1 || h > H || w > W)
    throw std::invalid_argument("center_crop_box: a " + std::to_string(h) + "x" + std::to_string(w) +
                                " crop does not fit a " + std::to_string(H) + "x" + std::to_string(W) + " image");
  return {(H - h) / 2, (W - w) / 2, h, w};
}

std::vector<CropBox> random_erasing_boxes(int64_t H, int64_t W, Generator& gen, const RandomErasingOptions& opt) {
  check_image(H, W, "random_erasing_boxes");
  if (!(opt.area_min > 0 && opt.area_min <= opt.area_max) || !(opt.ratio_min > 0 && opt.ratio_min <= opt.ratio_max))
    throw std::invalid_argument("random_erasing_boxes: expected 0 < area_min <= area_max and 0 < ratio_min <= ratio_max");
  if (opt.min_count < 1 || opt.max_count < opt.min_count)
    throw std::invalid_argument("random_erasing_boxes: expected 1 <= min_count <= max_count, got " +
                                std::to_string(opt.min_count) + ", " + std::to_string(opt.max_count));
  std::vector<CropBox> boxes;
  // timm: `if random.random() > self.probability: return` -- erase when u <= p.
  if (draw_uniform01(gen) > opt.probability) return boxes;
  const double area = double(H) * double(W);
  const int64_t count = opt.min_count == opt.max_count ? opt.min_count : draw_int(gen, opt.min_count, opt.max_count);
  const double log_lo = std::log(opt.ratio_min), log_hi = std::log(opt.ratio_max);
  for (int64_t k = 0; k < count; ++k) {
    for (int attempt = 0; attempt < opt.attempts; ++attempt) {
      const double target_area = draw_uniform(gen, opt.area_min, opt.area_max) * area / double(count);
      const double aspect = std::exp(draw_uniform(gen, log_lo, log_hi));
      const int64_t h = py_round(std::sqrt(target_area * aspect));
      const int64_t w = py_round(std::sqrt(target_area / aspect));
      if (w < W && h < H) {  // as timm: an empty box (tiny areas only) is accepted and erases nothing
        const int64_t top = draw_int(gen, 0, H - h);
        const int64_t left = draw_int(gen, 0, W - w);
        boxes.push_back({top, left, h, w});
        break;
      }
    }
  }
  return boxes;
}

std::optional<CropBox> random_erasing_params(int64_t H, int64_t W, Generator& gen, const RandomErasingOptions& opt) {
  if (opt.min_count != 1 || opt.max_count != 1)
    throw std::invalid_argument("random_erasing_params: makes one box; for min_count / max_count (" +
                                std::to_string(opt.min_count) + ", " + std::to_string(opt.max_count) +
                                ") use random_erasing_boxes");
  std::vector<CropBox> b = random_erasing_boxes(H, W, gen, opt);
  if (b.empty()) return std::nullopt;
  return b.front();
}

}  // namespace rv::data
