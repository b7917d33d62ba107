// box_transforms.cpp: detection resize / flip / crop: the image through the uint8 ops, the
// boxes by the same geometry.
#include "data/box_transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "data/cv_resize.h"
#include "data/image_ops.h"

namespace rv::data {

namespace {

void check_det_image(const char* op, const DetImage& d) {
  if (d.image.empty()) throw std::invalid_argument(std::string(op) + ": image: expected a non-empty (H, W, C) image");
  if (d.boxes.size() != d.labels.size())
    throw std::invalid_argument(std::string(op) + ": boxes and labels: expected as many, got " +
                                std::to_string(d.boxes.size()) + " and " + std::to_string(d.labels.size()));
}

// Scaled by (sx, sy), then clipped to [0, w] x [0, h] (mmdet's Resize, clip_object_border).
std::vector<Box> scaled(const std::vector<Box>& boxes, double sx, double sy, double w, double h) {
  std::vector<Box> out = boxes;
  for (Box& b : out)
    b = {std::clamp(b[0] * sx, 0.0, w), std::clamp(b[1] * sy, 0.0, h), std::clamp(b[2] * sx, 0.0, w),
         std::clamp(b[3] * sy, 0.0, h)};
  return out;
}

}  // namespace

std::array<int64_t, 2> keep_ratio_size(int64_t height, int64_t width, int64_t long_side, int64_t short_side) {
  if (height < 1 || width < 1 || long_side < 1 || short_side < 1)
    throw std::invalid_argument("keep_ratio_size: expected positive sizes, got " + std::to_string(height) + "x" +
                                std::to_string(width) + " to (" + std::to_string(long_side) + ", " +
                                std::to_string(short_side) + ")");
  const double f = std::min(double(std::max(long_side, short_side)) / double(std::max(height, width)),
                            double(std::min(long_side, short_side)) / double(std::min(height, width)));
  // mmcv rescale_size: int(w * scale + 0.5), i.e. round half up.
  return {std::max<int64_t>(1, int64_t(double(height) * f + 0.5)), std::max<int64_t>(1, int64_t(double(width) * f + 0.5))};
}

DetImage det_resize(const DetImage& d, int64_t out_h, int64_t out_w) {
  check_det_image("det_resize", d);
  if (out_h < 1 || out_w < 1 || out_h > (int64_t(1) << 20) || out_w > (int64_t(1) << 20))
    throw std::invalid_argument("det_resize: size: expected 1 .. 2^20 per side, got " + std::to_string(out_h) + "x" +
                                std::to_string(out_w));
  const int64_t H = d.image.height, W = d.image.width;
  DetImage r;
  r.image = cv_resize_linear(d.image, int(out_h), int(out_w));
  const double sx = double(out_w) / double(W), sy = double(out_h) / double(H);
  r.boxes = scaled(d.boxes, sx, sy, double(out_w), double(out_h));
  r.crowd_boxes = scaled(d.crowd_boxes, sx, sy, double(out_w), double(out_h));
  r.labels = d.labels;
  return r;
}

DetImage det_resize_keep_ratio(const DetImage& d, int64_t long_side, int64_t short_side) {
  check_det_image("det_resize_keep_ratio", d);
  const auto [h, w] = keep_ratio_size(d.image.height, d.image.width, long_side, short_side);
  return det_resize(d, h, w);
}

void det_hflip_(DetImage& d) {
  check_det_image("det_hflip_", d);
  const double W = double(d.image.width);
  d.image = hflip(d.image);
  for (auto* list : {&d.boxes, &d.crowd_boxes})
    for (Box& b : *list) b = {W - b[2], b[1], W - b[0], b[3]};
}

DetImage det_crop(const DetImage& d, const CropBox& c) {
  check_det_image("det_crop", d);
  const int64_t H = d.image.height, W = d.image.width;
  if (c.top < 0 || c.left < 0 || c.height < 1 || c.width < 1 || c.top + c.height > H || c.left + c.width > W)
    throw std::invalid_argument("det_crop: box: expected inside the " + std::to_string(H) + "x" + std::to_string(W) +
                                " image, got top " + std::to_string(c.top) + " left " + std::to_string(c.left) + " " +
                                std::to_string(c.height) + "x" + std::to_string(c.width));
  DetImage r;
  r.image = crop(d.image, int(c.top), int(c.left), int(c.height), int(c.width));
  const double w = double(c.width), h = double(c.height);
  auto clip = [&](const Box& b) -> Box {
    return {std::clamp(b[0] - double(c.left), 0.0, w), std::clamp(b[1] - double(c.top), 0.0, h),
            std::clamp(b[2] - double(c.left), 0.0, w), std::clamp(b[3] - double(c.top), 0.0, h)};
  };
  // mmdet's is_inside after clipping: a box that did not overlap the crop is now a line on its border.
  auto inside = [&](const Box& b) { return b[0] < w && b[1] < h && b[2] > 0 && b[3] > 0; };
  for (size_t k = 0; k < d.boxes.size(); ++k) {
    const Box b = clip(d.boxes[k]);
    if (inside(b)) {
      r.boxes.push_back(b);
      r.labels.push_back(d.labels[k]);
    }
  }
  for (const Box& cb : d.crowd_boxes) {
    const Box b = clip(cb);
    if (inside(b)) r.crowd_boxes.push_back(b);
  }
  return r;
}

void det_filter_small_(DetImage& d, double min_wh) {
  if (d.boxes.size() != d.labels.size())
    throw std::invalid_argument("det_filter_small_: boxes and labels: expected as many, got " +
                                std::to_string(d.boxes.size()) + " and " + std::to_string(d.labels.size()));
  auto big = [&](const Box& b) { return b[2] - b[0] > min_wh && b[3] - b[1] > min_wh; };
  size_t n = 0;
  for (size_t k = 0; k < d.boxes.size(); ++k)
    if (big(d.boxes[k])) {
      d.boxes[n] = d.boxes[k];
      d.labels[n] = d.labels[k];
      ++n;
    }
  d.boxes.resize(n);
  d.labels.resize(n);
  std::erase_if(d.crowd_boxes, [&](const Box& b) { return !big(b); });
}

}  // namespace rv::data
