// box_transforms.h: detection transforms that move an image and its boxes together, as
// mmdetection's Resize (keep_ratio), RandomFlip, RandomCrop and FilterAnnotations do.
//
//   DetImage d{image (H, W, 3) uint8, boxes x1 y1 x2 y2, labels, crowd boxes};
//   d = det_resize_keep_ratio(d, 1333, 800);   // longer side <= 1333, shorter <= 800, one factor
//   det_hflip_(d);                             // x -> W - x
//   d = det_crop(d, {.top = 10, .left = 20, .height = 512, .width = 512});  // shifted, clipped, outside ones dropped
//
// The image is uint8 HWC, as in mmdet's pipeline (cv2 images): every geometric transform runs
// on bytes, and normalisation comes last (mmdet's data preprocessor), so a resize rounds to
// 8 bits exactly where mmdet's does. The resize is OpenCV's bilinear (cv_resize.h), not
// antialiased, as mmcv.imresize.
//
// Boxes are in pixel coordinates of the image's corners (x2 = x + w, no +1): an image of width W
// spans [0, W], so a flip maps [x1, x2] to [W - x2, W - x1] exactly. Resizing scales boxes by the
// realised factors new_w / W and new_h / H (mmdet's w_scale, h_scale), not the requested one, and
// clips them to the new image (clip_object_border). Cropping (mmdet RandomCrop, bbox_clip_border):
// boxes are shifted by the crop origin, clipped to [0, w] x [0, h], and kept when still inside
// (mmdet's is_inside: x1 < w, y1 < h, x2 > 0, y2 > 0), labels and crowd boxes likewise.
// Labels travel with their boxes; crowd boxes (ignore regions) get the same geometry and filters.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "data/augment_params.h"
#include "data/image.h"

namespace rv::data {

using Box = std::array<double, 4>;  // x1, y1, x2, y2

struct DetImage {
  Image image;                  // (H, W, C) uint8
  std::vector<Box> boxes;       // (K, 4)
  std::vector<int64_t> labels;  // (K,)
  std::vector<Box> crowd_boxes; // ignore regions
};

// mmdet's rescale_size: factor = min(long_side / max(H, W), short_side / min(H, W)), new size
// = int(W * factor + 0.5) x int(H * factor + 0.5) (mmcv rescale_size: half rounds up).
std::array<int64_t, 2> keep_ratio_size(int64_t height, int64_t width, int64_t long_side, int64_t short_side);
DetImage det_resize_keep_ratio(const DetImage& d, int64_t long_side, int64_t short_side);
// Resize to exactly (out_h, out_w), boxes scaled by out_w / W and out_h / H, then clipped.
DetImage det_resize(const DetImage& d, int64_t out_h, int64_t out_w);
void det_hflip_(DetImage& d);
// `box` (top, left, height, width) must lie inside the image.
DetImage det_crop(const DetImage& d, const CropBox& box);
// mmdet's FilterAnnotations(min_gt_bbox_wh=(m, m)): keeps the boxes (and crowd boxes) with
// width > m and height > m.
void det_filter_small_(DetImage& d, double min_wh);

}  // namespace rv::data
