// seg_transforms.h: the semantic-segmentation transforms of mmseg 1.x's ADE20k pipeline, moving a
// uint8 RGB image (data/image.h) and its uint8 label map (1 channel, 255 = ignore) together.
//
//   train: RandomResize(scale (2048, 512), ratio 0.5..2, keep_ratio) -> RandomCrop(512, cat_max_ratio
//          0.75) -> RandomFlip(0.5) -> PhotoMetricDistortion -> normalise -> pad to 512 (0 / 255)
//   eval:  Resize(scale (2048, 512), keep_ratio) of the image only (mmseg scores the prediction
//          against the label map at its original size) -> normalise
//
// Each random op is split, as data/augment_params.h does it, into a `draw_*` function (the only
// place randomness enters, from the loader's per-sample Philox Generator, data/random_draws.h)
// and a deterministic apply that takes the drawn parameters. The draws are ours, not numpy's;
// the pixels given the parameters are mmseg's:
//   - resizing is OpenCV's cv2.resize (mmcv.imresize's backend): INTER_LINEAR for the image,
//     with its 11-bit fixed-point taps and no antialiasing (a 4x downscale skips pixels, unlike
//     Pillow), INTER_NEAREST for the label map (floor(x * src / dst): no new label values);
//   - the sizes are mmcv's rescale_size (keep_ratio_size, data/box_transforms.h);
//   - PhotoMetricDistortion is mmseg's uint8 arithmetic: x * alpha + beta in float32, clipped and
//     truncated; saturation and hue through OpenCV's uint8 HSV (H in 0..179; fixed-point tables
//     one way; float with a fused multiply-add the way back, truncated on the first multiple of
//     32 pixels of each row (OpenCV's AVX2 vector loop) and rounded on the rest (its scalar tail)).
//     mmseg works on BGR images; brightness and contrast act on every channel alike and BGR->HSV of
//     a BGR image equals RGB->HSV of the RGB one, so working in RGB changes nothing;
//   - the image is padded after normalisation (mmseg's SegDataPreProcessor pads the normalised
//     batch with 0), so padding is 0 in normalised units, i.e. the mean colour, not black.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "data/augment_params.h"
#include "data/cv_resize.h"  // cv_resize_linear (the image), cv_resize_nearest (the labels)
#include "data/image.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::data {

inline constexpr uint8_t kSegIgnore = 255;  // mmseg's ignore_index (and seg_pad_val)

// mmcv's RandomResize ratio sampling: target scale (int(long * r), int(short * r)) for a ratio r.
std::array<int64_t, 2> random_resize_target(const std::array<int64_t, 2>& scale, double ratio);
// r uniform in [lo, hi) (np.random.random_sample() * (hi - lo) + lo).
double draw_resize_ratio(Generator& gen, double lo, double hi);

// mmcv Resize(keep_ratio=True) of image (bilinear) and label map (nearest) to the size that
// keep_ratio_size(H, W, scale[0], scale[1]) gives (the larger of `scale` bounds the longer side).
// `labels` may be empty (eval: the label map stays as it is).
void seg_resize_keep_ratio(Image& image, Image* labels, const std::array<int64_t, 2>& scale);

// ---- RandomCrop with cat_max_ratio ----

struct SegCropOptions {
  int64_t height = 512, width = 512;  // crop_size (h, w)
  double cat_max_ratio = 0.75;        // >= 1 disables the check
  int attempts = 10;                  // mmseg's "Repeat 10 times"
};

// mmseg RandomCrop.crop_bbox: offsets uniform in 0 .. max(H - h, 0) (top, then left); while the
// crop's label map has fewer than 2 classes other than 255, or one class covers cat_max_ratio or
// more of the non-ignored pixels, draw again, up to `attempts` times; the box drawn after the
// last failed check is kept unchecked (as mmseg does). The box is clipped to the image (an image
// smaller than the crop is kept whole; padding follows).
CropBox draw_seg_crop(const Image& labels, Generator& gen, const SegCropOptions& opt = {});
// That loop over candidate boxes from `next_box` (called once, then once after each failed
// check): the deterministic half of draw_seg_crop, which passes boxes drawn from `gen`.
CropBox select_seg_crop(const Image& labels, const std::function<CropBox()>& next_box, const SegCropOptions& opt);
// Whether a crop of `labels` passes mmseg's check: >= 2 non-ignored classes and the largest
// count / total < cat_max_ratio.
bool seg_crop_accepted(const Image& labels, const CropBox& box, double cat_max_ratio);
// The box clipped to the image (numpy slicing's rule).
CropBox clip_crop_box(const CropBox& box, int64_t H, int64_t W);

// ---- PhotoMetricDistortion ----

struct PhotoMetricOptions {
  double brightness_delta = 32;
  double contrast_lo = 0.5, contrast_hi = 1.5;
  double saturation_lo = 0.5, saturation_hi = 1.5;
  int hue_delta = 18;
};

// The drawn parameters: an op is skipped where its value is empty.
struct PhotoMetricParams {
  std::optional<float> brightness = std::nullopt;  // beta added, in [-delta, delta)
  bool contrast_first = false;                    // mmseg's mode == 1: contrast right after brightness
  std::optional<float> contrast = std::nullopt;    // alpha
  std::optional<float> saturation = std::nullopt;  // alpha on S
  std::optional<int> hue = std::nullopt;           // added to H (mod 180), in [-hue_delta, hue_delta - 1]
};

// The draws, in mmseg's order: brightness coin (+ beta), mode, contrast coin (+ alpha),
// saturation coin (+ alpha), hue coin (+ delta). Each coin is heads with probability 1/2.
// The hue shift excludes +hue_delta, as numpy's randint(-18, 18) does.
PhotoMetricParams draw_photometric(Generator& gen, const PhotoMetricOptions& opt = {});

// mmseg's convert: clip(float32(v) * alpha + beta, 0, 255) truncated, on every byte of `im`.
void photometric_convert_(Image& im, float alpha, float beta);
// OpenCV's uint8 RGB <-> HSV (COLOR_RGB2HSV / COLOR_HSV2RGB, H in 0..179), in place.
void rgb_to_hsv_cv_(Image& im);
void hsv_to_rgb_cv_(Image& im);
// The whole distortion: brightness, contrast (first), saturation, hue, contrast (last).
void photometric_distort_(Image& im, const PhotoMetricParams& p);

// ---- padding and normalisation ----

// Pads at the bottom and right to (height, width) with `value` (mmseg: image 0, label 255).
// A side already longer is an error (crop first).
Image pad_to(const Image& im, int height, int width, uint8_t value);

inline constexpr std::array<float, 3> kSegMean = {123.675f, 116.28f, 103.53f};  // RGB, 0..255 units
inline constexpr std::array<float, 3> kSegStd = {58.395f, 57.12f, 57.375f};

// SegDataPreProcessor: (float(v) - mean[c]) / std[c] into `out`, a contiguous f32 (3, OH, OW)
// tensor with OH >= H, OW >= W; the rest (bottom / right) is 0, mmseg's pad_val after
// normalisation.
void normalize_pad_into(const Image& im, const Tensor& out, const std::array<float, 3>& mean = kSegMean,
                        const std::array<float, 3>& stdev = kSegStd);
// The label map into `out`, a contiguous u8 (OH, OW) tensor, padded with 255.
void label_pad_into(const Image& labels, const Tensor& out);

}  // namespace rv::data
