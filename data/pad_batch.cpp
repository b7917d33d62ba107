// pad_batch.cpp: the padded shape of a detection batch and the copy of one image into its row.
#include "data/pad_batch.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace rv::data {

Shape padded_batch_shape(const std::vector<Shape>& shapes, const PadOptions& opt) {
  if (opt.size_divisor < 1)
    throw std::invalid_argument("padded_batch_shape: size_divisor: expected >= 1, got " + std::to_string(opt.size_divisor));
  if (opt.min_height < 0 || opt.min_width < 0)
    throw std::invalid_argument("padded_batch_shape: min_height, min_width: expected >= 0, got " +
                                std::to_string(opt.min_height) + ", " + std::to_string(opt.min_width));
  if (shapes.empty()) throw std::invalid_argument("padded_batch_shape: expected at least one image");
  int64_t H = 0, W = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    if (s.size() != 3 || s[0] != shapes[0][0])
      throw std::invalid_argument("padded_batch_shape: image " + std::to_string(i) + ": expected (C, H, W) with C = " +
                                  std::to_string(shapes[0].size() == 3 ? shapes[0][0] : -1) + ", got " + shape_str(s));
    H = std::max(H, s[1]);
    W = std::max(W, s[2]);
  }
  auto up = [&](int64_t v) { return (v + opt.size_divisor - 1) / opt.size_divisor * opt.size_divisor; };
  // DetDataPreprocessor stacks at the divisor first, then BatchFixedSizePad raises a smaller
  // batch to its fixed size: max(up(H), min_height), not up(max(H, min_height)).
  return {int64_t(shapes.size()), shapes[0][0], std::max(up(H), opt.min_height), std::max(up(W), opt.min_width)};
}

void pad_into(const Tensor& image, const PadOptions& opt, const Tensor& out_row) {
  if (image.dtype() != DType::f32 || image.dim() != 3 || out_row.dtype() != DType::f32 || out_row.dim() != 3 ||
      !out_row.is_contiguous() || image.size(0) != out_row.size(0) || image.size(1) > out_row.size(1) ||
      image.size(2) > out_row.size(2))
    throw std::invalid_argument("pad_into: expected an f32 (C, h, w) image and a contiguous f32 (C, H, W) row with "
                                "h <= H, w <= W, got " + shape_str(image.shape()) + " and " + shape_str(out_row.shape()));
  const Tensor src = image.contiguous();
  const int64_t C = src.size(0), h = src.size(1), w = src.size(2), H = out_row.size(1), W = out_row.size(2);
  const float* s = src.data<float>();
  float* d = out_row.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < h; ++y) {
      float* row = d + (c * H + y) * W;
      std::memcpy(row, s + (c * h + y) * w, size_t(w) * sizeof(float));
      std::fill(row + w, row + W, opt.value);  // right of the image
    }
    std::fill(d + (c * H + h) * W, d + (c + 1) * H * W, opt.value);  // below it
  }
}

}  // namespace rv::data
