// det_augment.h: the detection recipes' per-image transforms, split as everywhere in data/ into
// a draw of the random parameters (from the loader's Philox generator only) and a deterministic
// application of them (so tests and fixtures can give the parameters).
//
//   resize (eval; mmdet's test pipeline):  Resize(scale=(1333, 800), keep_ratio=True)
//   resize_flip (mmdet's 1x training):     Resize(scale=(1333, 800), keep_ratio=True), RandomFlip(0.5)
//   lsj (large-scale jitter: ViTDet, mmdet configs/common/lsj-*):
//       RandomResize(scale=(1024, 1024), ratio_range=(0.1, 2.0), keep_ratio=True)
//         ratio r ~ U[0.1, 2.0), target (int(1024 r), int(1024 r)), then keep-ratio resize to it
//       RandomCrop(crop_type='absolute_range', crop_size=(1024, 1024), allow_negative_crop=True)
//         crop min(h, 1024) x min(w, 1024) (the range's ends are equal: no draw), offset
//         uniform in [0, h - crop_h] then [0, w - crop_w]; boxes shifted, clipped, outside ones dropped
//       FilterAnnotations(min_gt_bbox_wh=(1e-2, 1e-2)); RandomFlip(0.5)
//       the 1024 x 1024 pad is the batch's (mmdet's BatchFixedSizePad): PadOptions in loader.h
//
// Draw order (the determinism contract): lsj draws the ratio, the crop's top, its left, then the
// flip coin; resize_flip only the coin; resize nothing.
// Two deliberate differences from mmdet's LSJ: (1) RandomCrop(recompute_bbox=True) recomputes
// boxes from the cropped instance masks; this pipeline has no masks, so boxes are the clipped
// boxes (a box whose mask is not convex can be looser than mmdet's); (2) when no box survives,
// mmdet's FilterAnnotations returns None and the data set retries a random other image; here the
// image is kept with no boxes, since a retry drawn outside the sample's stream would break the
// sample -> pixels determinism (an image without boxes still trains the background).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "data/det_target.h"
#include "engine/rng.h"

namespace rv::data {

enum class DetAugment { resize, resize_flip, lsj };
DetAugment det_augment_from_name(const std::string& name);  // "resize" | "resize_flip" | "lsj"
const char* det_augment_name(DetAugment a);

struct DetTransformOptions {
  DetAugment augment = DetAugment::resize;
  int64_t long_side = 1333, short_side = 800;  // resize / resize_flip: mmdet's scale=(1333, 800)
  double flip = 0.5;                           // probability (resize_flip, lsj)
  int64_t lsj_height = 1024, lsj_width = 1024; // lsj: the scale and the crop size
  double ratio_min = 0.1, ratio_max = 2.0;     // lsj: RandomResize's ratio_range
  double min_box = 1e-2;                       // lsj: FilterAnnotations' min_gt_bbox_wh
};

struct DetParams {
  double ratio = 1;                      // lsj: the drawn scale ratio (1 otherwise)
  int64_t resized_height = 0, resized_width = 0;
  std::optional<CropBox> crop = std::nullopt;  // in the resized image (lsj)
  bool flip = false;
};

// The parameters for an H x W image. Throws std::invalid_argument naming a bad option.
DetParams det_params(int64_t H, int64_t W, const DetTransformOptions& opt, Generator& gen);

// Applies `p`: resize, crop, small-box filter (when cropping, with opt.min_box), flip. `meta`
// (optional) gets the geometry (its image_id and ori size are left to the caller).
DetImage apply_det_transform(const DetImage& d, const DetParams& p, const DetTransformOptions& opt,
                             DetImageMeta* meta = nullptr);

}  // namespace rv::data
