// image_ops.h: the deterministic uint8 image operations the augmentations are built from, each
// with the pixels of the PIL / torchvision function named beside it.
//
//   crop, center_crop            PIL crop; torchvision center_crop (offsets rounded half-to-even,
//                                as Python's round)
//   hflip                        PIL transpose(FLIP_LEFT_RIGHT)
//   resize_short_side            torchvision Resize(int): short side to S, long side truncated
//   grayscale3                   torchvision Grayscale(3): PIL convert("L"), copied to 3 channels
//   solarize                     PIL ImageOps.solarize: v >= threshold -> 255 - v
//   blend                        PIL Image.blend (the ImageEnhance classes use it)
//   adjust_brightness/contrast/saturation/hue    torchvision F.adjust_* on a PIL image
//   gaussian_blur                PIL ImageFilter.GaussianBlur: 3 box blurs of fractional radius
//   to_tensor_normalized         ToTensor + Normalize: (C, H, W) f32, (v / 255 - mean) / std
#pragma once
#include <array>
#include <cstdint>

#include "data/image.h"
#include "data/pil_resize.h"
#include "engine/tensor.h"

namespace rv::data {

Image crop(const Image& im, int top, int left, int height, int width);
// The centre (height x width) crop; a crop larger than the image is an error (torchvision pads;
// the pipelines here never ask for that).
Image center_crop(const Image& im, int height, int width);
Image hflip(const Image& im);
// Short side to `size`, the other to int(size * long / short), as torchvision's Resize(size).
Image resize_short_side(const Image& im, int size, Interp interp);

Image grayscale3(const Image& im);
Image solarize(const Image& im, int threshold = 128);
// PIL Image.blend(a, b, alpha): a + alpha * (b - a) in float, truncated (clipped when alpha is
// outside [0, 1]).
Image blend(const Image& a, const Image& b, float alpha);
// blend of one byte: a + alpha * (b - a) in float, truncated toward zero, clipped outside
// [0, 1] (inside it the value cannot leave 0..255). Written branch-free so loops over it
// vectorise (compare-selects and a truncating float -> int conversion).
inline uint8_t blend_byte(int a, int b, float alpha) {
  float t = float(a) + alpha * float(b - a);
  t = t < 0.0f ? 0.0f : t;
  t = t > 255.0f ? 255.0f : t;
  return uint8_t(int(t));
}
Image adjust_brightness(const Image& im, float factor);  // blend(black, im, f)
Image adjust_contrast(const Image& im, float factor);    // blend(mean grey, im, f)
Image adjust_saturation(const Image& im, float factor);  // blend(grey(im), im, f)
Image adjust_hue(const Image& im, float hue_factor);     // HSV hue shift, hue_factor in [-0.5, 0.5]
Image gaussian_blur(const Image& im, float radius);

// (C, H, W) float32 with channel c = (v / 255 - mean[c]) / std[c].
Tensor to_tensor_normalized(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev);
// The same values written into `out`, a contiguous f32 (C, H, W) tensor (e.g. one row of a
// loader's batch, so the pixels are written once).
void to_tensor_normalized_into(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev,
                               const Tensor& out);

inline constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};

}  // namespace rv::data
