// augment.cpp: resized crop, ColorJitter and 3-Augment (see augment.h for the references).
#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "data/image_ops.h"

namespace rv::data {

Image resized_crop(const Image& im, const CropBox& b, int out_h, int out_w, Interp interp, ResizeMode mode) {
  return resize(crop_view(im, int(b.top), int(b.left), int(b.height), int(b.width)), out_h, out_w, interp, mode);
}

ColorJitterParams color_jitter_params(const ColorJitterOptions& opt, RandomDraws& rd) {
  ColorJitterParams p;
  const std::vector<int> perm = rd.permutation(4);
  std::copy(perm.begin(), perm.end(), p.order.begin());
  auto factor = [&](float x) -> std::optional<float> {
    if (x < 0) throw std::invalid_argument("color_jitter: strengths must be >= 0");
    if (x == 0) return std::nullopt;
    return float(rd.uniform(std::max(0.0, 1.0 - x), 1.0 + x));
  };
  p.brightness = factor(opt.brightness);
  p.contrast = factor(opt.contrast);
  p.saturation = factor(opt.saturation);
  if (opt.hue < 0 || opt.hue > 0.5f) throw std::invalid_argument("color_jitter: hue must be in [0, 0.5], got " + std::to_string(opt.hue));
  if (opt.hue > 0) p.hue = float(rd.uniform(-opt.hue, opt.hue));
  return p;
}

Image color_jitter_apply(const Image& im, const ColorJitterParams& p) {
  Image out = im;
  for (int fn : p.order) {
    if (fn == 0 && p.brightness) out = adjust_brightness(out, *p.brightness);
    else if (fn == 1 && p.contrast) out = adjust_contrast(out, *p.contrast);
    else if (fn == 2 && p.saturation) out = adjust_saturation(out, *p.saturation);
    else if (fn == 3 && p.hue) out = adjust_hue(out, *p.hue);
  }
  return out;
}

ThreeAugmentParams three_augment_params(float color_jitter, RandomDraws& rd) {
  ThreeAugmentParams p;
  p.op = ThreeAugmentOp(rd.randint(0, 2));
  if (p.op == ThreeAugmentOp::gaussian_blur) p.blur_radius = float(rd.uniform(0.1, 2.0));
  if (color_jitter > 0) p.jitter = color_jitter_params({color_jitter, color_jitter, color_jitter, 0.0f}, rd);
  return p;
}

Image three_augment_apply(const Image& im, const ThreeAugmentParams& p) {
  Image out;
  switch (p.op) {
    case ThreeAugmentOp::grayscale: out = grayscale3(im); break;
    case ThreeAugmentOp::solarize: out = solarize(im, 128); break;
    case ThreeAugmentOp::gaussian_blur: out = gaussian_blur(im, p.blur_radius); break;
  }
  return p.jitter ? color_jitter_apply(out, *p.jitter) : out;
}

}  // namespace rv::data
