// cv_resize.h: OpenCV's resizes of uint8 images with its exact pixels: cv2.resize(...,
// INTER_LINEAR), the resize mmdetection's Resize / RandomResize and mmseg's image resize use
// (mmcv.imresize / imrescale, backend cv2), and INTER_NEAREST, mmseg's label-map resize.
//
// Unlike Pillow's resize (pil_resize.h) this is NOT antialiased: each output pixel is a blend
// of the 2 x 2 input pixels around its back-projected centre, whatever the scale, so shrinking
// by 10x skips most input pixels, exactly as the reference trainers see it.
//
//   centre:  fx = (dx + 0.5) * (1 / (out_w / W)) - 0.5  (in float, as OpenCV), sx = floor(fx),
//            weights (1 - a, a) with a = fx - sx; a left/right overhang clamps to the edge pixel
//   fixed point: weights as 11-bit integers (round(w * 2048)); a horizontal pass into 32-bit
//            sums (value * 2048), a vertical pass that rounds the 22-bit product back to 8 bits
//
// The vertical pass rounds as OpenCV's SIMD loop does (drop 4 bits, 16-bit multiply-high, then
// a 2-bit rounding shift), which is what OpenCV 5's x86 build runs on whole rows: the fixtures
// (tests/fixtures/test_det_transforms.cpp, cv2 5.0.0) match every byte. OpenCV builds that
// finish a row with the scalar code (exact 22-bit rounding) differ by at most 1 grey level there.
// One implementation for detection (box_transforms.cpp) and segmentation (seg_transforms.cpp):
// both fixture tests (test_det_transforms.cpp, test_seg_transforms.cpp) check it. A second,
// simpler version that ran the horizontal pass on every source row was 2x (upscaling) to 19x
// (4x downscaling) slower and gave the same bytes; it was removed.
//
// INTER_NEAREST: source x = min(floor(dx * (1 / (out_w / W))), W - 1), likewise y: no new values,
// as a label map needs.
//
// Single-threaded: the loader's workers are the parallelism.
#pragma once
#include "data/image.h"

namespace rv::data {

// out_height x out_width (>= 1 each); 1 or 3 channels. A same-size request copies.
Image cv_resize_linear(const Image& src, int out_height, int out_width);
// out_height x out_width (>= 1 each); any number of channels.
Image cv_resize_nearest(const Image& src, int out_height, int out_width);

}  // namespace rv::data
