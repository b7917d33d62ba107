// augment.h: the random augmentations of the timm / DeiT training pipelines on uint8 HWC images,
// each split into parameters sampled from RandomDraws and a deterministic apply (see
// augment_random.h for why).
//
//   RandomResizedCrop   the box from augment_params.h (timm's rules); the crop resized as PIL
//   horizontal flip     with probability p
//   ColorJitter         torchvision: a random order of brightness / contrast / saturation / hue,
//                       each factor uniform in [1 - x, 1 + x] (hue in [-h, h]); a 0 turns one off
//   3-Augment           DeiT III: exactly one of grayscale / solarize / Gaussian blur (radius
//                       uniform in [0.1, 2]), then ColorJitter(cj, cj, cj)
// Random erasing works on the normalised tensor (data/augment_params.h boxes, data/tensor_transforms.h
// chw::erase_ fill); RandAugment has its own
// file (data/rand_augment.h).
#pragma once
#include <array>
#include <optional>

#include "data/augment_params.h"
#include "data/augment_random.h"
#include "data/image.h"
#include "data/pil_resize.h"

namespace rv::data {

// ---- RandomResizedCrop -------------------------------------------------------------------
// The box: random_resized_crop_params (augment_params.h) on rd.generator(), the same draws.
// The crop resized to out_height x out_width (torchvision F.resized_crop on a PIL image).
Image resized_crop(const Image& im, const CropBox& box, int out_height, int out_width, Interp interp,
                   ResizeMode mode = ResizeMode::exact);

// ---- ColorJitter -------------------------------------------------------------------------
struct ColorJitterOptions {
  float brightness = 0, contrast = 0, saturation = 0, hue = 0;  // 0: that adjustment is off
};
struct ColorJitterParams {
  std::array<int, 4> order = {0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
  std::optional<float> brightness, contrast, saturation, hue;
};
ColorJitterParams color_jitter_params(const ColorJitterOptions& opt, RandomDraws& rd);
Image color_jitter_apply(const Image& im, const ColorJitterParams& p);

// ---- 3-Augment (DeiT III) ----------------------------------------------------------------
enum class ThreeAugmentOp { grayscale = 0, solarize = 1, gaussian_blur = 2 };
struct ThreeAugmentParams {
  ThreeAugmentOp op = ThreeAugmentOp::grayscale;
  float blur_radius = 0;  // for gaussian_blur
  std::optional<ColorJitterParams> jitter;
};
// color_jitter: DeiT's --color-jitter (0.3 in the DeiT III recipe; 0 turns the jitter off).
ThreeAugmentParams three_augment_params(float color_jitter, RandomDraws& rd);
Image three_augment_apply(const Image& im, const ThreeAugmentParams& p);

}  // namespace rv::data
