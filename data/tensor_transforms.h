// tensor_transforms.h: image transforms on float32 (C, H, W) tensors, for the data sets'
// pipelines: crop + resize in one pass, horizontal flip, per-channel normalisation, erasing.
//
//   CropBox box = random_resized_crop_params(H, W, gen, {.scale_min = 0.35});   augment_params.h
//   chw::resized_crop_into(img, box, row, {.interp = chw::Interp::bicubic});    row: (C, R, R)
//   if (draw_bernoulli(gen, 0.5)) chw::hflip_(row);
//   chw::normalize_(row, {0.2860}, {0.3530});
//
// The `_into` and `_` forms write into a tensor the caller owns, such as one row of a batch
// (Loader: the sample's pixels are written once, straight into the batch). They live in
// namespace chw to keep apart from the uint8 HWC image functions (PIL-compatible resize).
//
// Resizing follows torch.nn.functional.interpolate (align_corners = false) on the cropped
// region, as torchvision's tensor transforms do: "bilinear" (triangle filter) or "bicubic"
// (Keys cubic, A = -0.75, or A = -0.5 with antialias as PIL); with antialias the filter is
// widened by the downscale factor when shrinking, so a 224 -> 32 resize averages instead of
// aliasing (torchvision's default, antialias=True). Width is resampled first, then height, the
// same order and float arithmetic as engine/ops/interpolate.cpp, so the two agree bit for bit.
#pragma once
#include <string>
#include <vector>

#include "data/augment_params.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::data::chw {

enum class Interp { bilinear, bicubic };

struct ResizeOptions {
  Interp interp = Interp::bilinear;
  bool antialias = true;
};

// Resamples the `box` region of `src` (C, H, W) f32, any strides, to fill `out` (C, OH, OW)
// f32 contiguous, which may be a view into a larger tensor. The box must lie inside the image.
void resized_crop_into(const Tensor& src, const CropBox& box, const Tensor& out, const ResizeOptions& opt = {});
// The same into a new (C, out_h, out_w) tensor.
Tensor resized_crop(const Tensor& src, const CropBox& box, int64_t out_h, int64_t out_w, const ResizeOptions& opt = {});
// The whole image resized.
Tensor resize(const Tensor& src, int64_t out_h, int64_t out_w, const ResizeOptions& opt = {});

// Mirrors a contiguous f32 (C, H, W) tensor left-right, in place.
void hflip_(const Tensor& img);

// x = (x - mean[c]) / std[c] per channel, in place, on a contiguous f32 (C, H, W) tensor; one
// value in mean / std applies to every channel.
void normalize_(const Tensor& img, const std::vector<double>& mean, const std::vector<double>& std);

// What random erasing writes (timm's modes): zeros, one normal value per channel, or a normal
// value per pixel (both drawn from `gen`, for images normalised to mean 0 and std 1).
// One fill for both pipelines (Fashion-MNIST's and the ImageNet one, image_pipeline.h).
enum class EraseMode { constant, per_channel, per_pixel };
// timm's --remode names: "const" | "rand" | "pixel"; anything else throws, naming the choices.
EraseMode erase_mode_from_name(const std::string& name);
// Fills `box` of a contiguous f32 (C, H, W) tensor, in place.
void erase_(const Tensor& img, const CropBox& box, EraseMode mode, Generator& gen);

}  // namespace rv::data::chw
