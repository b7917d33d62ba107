// box_transforms.cpp: detection resize / flip / crop: the image through the CHW transforms, the
// boxes by the same geometry.
#include "data/box_transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "data/tensor_transforms.h"

namespace rv::data {

namespace {

void check_image(const char* op, const DetImage& d) {
  if (!d.image.defined() || d.image.dtype() != DType::f32 || d.image.dim() != 3)
    throw std::invalid_argument(std::string(op) + ": image: expected f32 (C, H, W)");
  if (d.boxes.size() != d.labels.size())
    throw std::invalid_argument(std::string(op) + ": boxes and labels: expected as many, got " +
                                std::to_string(d.boxes.size()) + " and " + std::to_string(d.labels.size()));
}

std::vector<Box> scaled(const std::vector<Box>& boxes, double sx, double sy) {
  std::vector<Box> out = boxes;
  for (Box& b : out) b = {b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy};
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
  check_image("det_resize", d);
  const int64_t H = d.image.size(1), W = d.image.size(2);
  DetImage r;
  r.image = chw::resize(d.image, out_h, out_w, {.interp = chw::Interp::bilinear, .antialias = false});
  const double sx = double(out_w) / double(W), sy = double(out_h) / double(H);
  r.boxes = scaled(d.boxes, sx, sy);
  r.crowd_boxes = scaled(d.crowd_boxes, sx, sy);
  r.labels = d.labels;
  return r;
}

DetImage det_resize_keep_ratio(const DetImage& d, int64_t long_side, int64_t short_side) {
  check_image("det_resize_keep_ratio", d);
  const auto [h, w] = keep_ratio_size(d.image.size(1), d.image.size(2), long_side, short_side);
  return det_resize(d, h, w);
}

void det_hflip_(DetImage& d) {
  check_image("det_hflip_", d);
  const double W = double(d.image.size(2));
  chw::hflip_(d.image);
  for (auto* list : {&d.boxes, &d.crowd_boxes})
    for (Box& b : *list) b = {W - b[2], b[1], W - b[0], b[3]};
}

DetImage det_crop(const DetImage& d, const CropBox& c) {
  check_image("det_crop", d);
  const int64_t H = d.image.size(1), W = d.image.size(2);
  if (c.top < 0 || c.left < 0 || c.height < 1 || c.width < 1 || c.top + c.height > H || c.left + c.width > W)
    throw std::invalid_argument("det_crop: box: expected inside the " + std::to_string(H) + "x" + std::to_string(W) +
                                " image, got top " + std::to_string(c.top) + " left " + std::to_string(c.left) + " " +
                                std::to_string(c.height) + "x" + std::to_string(c.width));
  DetImage r;
  r.image = d.image.narrow(1, c.top, c.height).narrow(2, c.left, c.width).contiguous();
  auto clip = [&](const Box& b) -> Box {
    return {std::clamp(b[0] - double(c.left), 0.0, double(c.width)), std::clamp(b[1] - double(c.top), 0.0, double(c.height)),
            std::clamp(b[2] - double(c.left), 0.0, double(c.width)), std::clamp(b[3] - double(c.top), 0.0, double(c.height))};
  };
  for (size_t k = 0; k < d.boxes.size(); ++k) {
    const Box b = clip(d.boxes[k]);
    if (b[2] > b[0] && b[3] > b[1]) {
      r.boxes.push_back(b);
      r.labels.push_back(d.labels[k]);
    }
  }
  for (const Box& cb : d.crowd_boxes) {
    const Box b = clip(cb);
    if (b[2] > b[0] && b[3] > b[1]) r.crowd_boxes.push_back(b);
  }
  return r;
}

}  // namespace rv::data
