// random_erasing.cpp: timm's RandomErasing fill (see random_erasing.h).
#include "data/random_erasing.h"

#include <cmath>
#include <stdexcept>

namespace rv::data {

EraseMode erase_mode_from_name(const std::string& name) {
  if (name == "const") return EraseMode::constant;
  if (name == "rand") return EraseMode::per_channel;
  if (name == "pixel") return EraseMode::pixel;
  throw std::invalid_argument("random erasing mode: expected \"const\", \"rand\" or \"pixel\", got \"" + name + "\"");
}

void random_erasing_apply(Tensor& chw, const std::vector<CropBox>& boxes, EraseMode mode, RandomDraws& rd) {
  if (chw.dim() != 3 || chw.dtype() != DType::f32 || !chw.is_contiguous())
    throw std::invalid_argument("random_erasing: expected a contiguous (C, H, W) float32 tensor");
  const int64_t C = chw.shape()[0], H = chw.shape()[1], W = chw.shape()[2];
  float* d = chw.data<float>();
  for (const CropBox& b : boxes) {
    if (b.top < 0 || b.left < 0 || b.top + b.height > H || b.left + b.width > W)
      throw std::out_of_range("random_erasing: box outside the image");
    for (int64_t c = 0; c < C; ++c) {
      const float chan = mode == EraseMode::per_channel ? float(rd.normal()) : 0.0f;
      for (int64_t y = b.top; y < b.top + b.height; ++y) {
        float* row = d + (c * H + y) * W;
        for (int64_t x = b.left; x < b.left + b.width; ++x) row[x] = mode == EraseMode::pixel ? float(rd.normal()) : chan;
      }
    }
  }
}

}  // namespace rv::data
