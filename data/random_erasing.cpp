// random_erasing.cpp: timm's RandomErasing (see random_erasing.h).
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

std::vector<CropBox> random_erasing_params(int H, int W, const RandomErasingOptions& opt, RandomDraws& rd) {
  std::vector<CropBox> boxes;
  if (opt.min_count < 1 || opt.max_count < opt.min_count)
    throw std::invalid_argument("random_erasing: expected 1 <= min_count <= max_count");
  if (rd.uniform() > opt.probability) return boxes;  // timm: random.random() > probability -> keep
  const double area = double(H) * W;
  const int count = opt.min_count == opt.max_count ? opt.min_count : int(rd.randint(opt.min_count, opt.max_count));
  const double la0 = std::log(opt.min_aspect), la1 = std::log(opt.max_aspect);
  for (int k = 0; k < count; ++k) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = rd.uniform(opt.min_area, opt.max_area) * area / count;
      const double aspect = std::exp(rd.uniform(la0, la1));
      const int h = int(std::nearbyint(std::sqrt(target * aspect)));
      const int w = int(std::nearbyint(std::sqrt(target / aspect)));
      if (w < W && h < H) {
        const int top = int(rd.randint(0, H - h)), left = int(rd.randint(0, W - w));
        boxes.push_back({top, left, h, w});
        break;
      }
    }
  }
  return boxes;
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
      for (int y = b.top; y < b.top + b.height; ++y) {
        float* row = d + (c * H + y) * W;
        for (int x = b.left; x < b.left + b.width; ++x) row[x] = mode == EraseMode::pixel ? float(rd.normal()) : chan;
      }
    }
  }
}

}  // namespace rv::data
