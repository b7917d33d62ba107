// box_transforms.h: detection transforms that move an image and its boxes together, as
// mmdetection's Resize (keep_ratio), RandomFlip and the large-scale-jitter RandomCrop do.
//
//   DetImage d{image (3, H, W) f32, boxes x1 y1 x2 y2, labels};
//   d = det_resize_keep_ratio(d, 1333, 800);   // longer side <= 1333, shorter <= 800, one factor
//   det_hflip_(d);                             // x -> W - x
//   d = det_crop(d, {.top = 10, .left = 20, .height = 512, .width = 512});// boxes shifted, clipped; empty dropped
//
// Boxes are in pixel coordinates of the image's corners (x2 = x + w, no +1): an image of width W
// spans [0, W], so a flip maps [x1, x2] to [W - x2, W - x1] exactly. Resizing scales boxes by the
// realised factors new_w / W and new_h / H (mmdet's w_scale, h_scale), not the requested one.
// Cropping (mmdet RandomCrop, bbox_clip_border): boxes are shifted by the crop origin, clipped to
// [0, w] x [0, h], and those left with no width or height are removed with their labels (and
// crowd boxes likewise).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "data/augment_params.h"
#include "engine/tensor.h"

namespace rv::data {

using Box = std::array<double, 4>;  // x1, y1, x2, y2

struct DetImage {
  Tensor image;                 // (C, H, W) f32
  std::vector<Box> boxes;       // (K, 4)
  std::vector<int64_t> labels;  // (K,)
  std::vector<Box> crowd_boxes; // ignore regions
};

// mmdet's rescale_size: factor = min(long_side / max(H, W), short_side / min(H, W)), new size
// = int(W * factor + 0.5) x int(H * factor + 0.5) (mmcv rescale_size: half rounds up).
std::array<int64_t, 2> keep_ratio_size(int64_t height, int64_t width, int64_t long_side, int64_t short_side);
DetImage det_resize_keep_ratio(const DetImage& d, int64_t long_side, int64_t short_side);
// Resize to exactly (out_h, out_w), boxes scaled by out_w / W and out_h / H.
DetImage det_resize(const DetImage& d, int64_t out_h, int64_t out_w);
void det_hflip_(DetImage& d);  // d.image must be contiguous
// `box` (top, left, height, width) must lie inside the image.
DetImage det_crop(const DetImage& d, const CropBox& box);

}  // namespace rv::data
