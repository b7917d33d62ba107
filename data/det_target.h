// det_target.h: what a detection sample carries besides its pixels: its boxes, labels and ignore
// regions in the transformed image, and the image meta that maps a box back to the original
// image (what evaluation needs: detections are scored in the annotation's coordinates).
//
//   original --resize (scale_x, scale_y)--> --crop (top, left)--> --flip (width)--> sample
//   box_to_original undoes the three in reverse order; mmdet keeps the same numbers in its
//   img_meta (ori_shape, img_shape, scale_factor, flip; the crop only as a homography).
#pragma once
#include <cstdint>
#include <vector>

#include "data/box_transforms.h"

namespace rv::data {

struct DetImageMeta {
  int64_t image_id = 0;                  // the COCO image id (results are written with it)
  int64_t ori_height = 0, ori_width = 0; // the file's size (mmdet's ori_shape)
  int64_t height = 0, width = 0;         // after the transforms, before batch padding (img_shape)
  double scale_x = 1, scale_y = 1;       // realised resize factors new / old (mmdet's scale_factor)
  int64_t crop_top = 0, crop_left = 0;   // crop origin in the resized image (LSJ; 0 otherwise)
  bool flip = false;                     // horizontal flip, the last transform
};

struct DetTarget {
  std::vector<Box> boxes;          // (K, 4) x1 y1 x2 y2 in the transformed image
  std::vector<int64_t> labels;     // (K,) contiguous labels 0..num_classes-1
  std::vector<Box> crowd_boxes;    // ignore regions, same coordinates
  DetImageMeta meta;
};

// A box of the transformed image in the original image's coordinates: unflip, uncrop, unscale.
inline Box box_to_original(const Box& b, const DetImageMeta& m) {
  Box r = b;
  if (m.flip) r = {double(m.width) - b[2], b[1], double(m.width) - b[0], b[3]};
  const double l = double(m.crop_left), t = double(m.crop_top);
  return {(r[0] + l) / m.scale_x, (r[1] + t) / m.scale_y, (r[2] + l) / m.scale_x, (r[3] + t) / m.scale_y};
}

}  // namespace rv::data
