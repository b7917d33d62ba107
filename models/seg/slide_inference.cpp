// slide_inference.cpp: slide_inference: windows, summed logits and the count matrix.
#include "models/seg/slide_inference.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"

namespace rv::models::seg {

Tensor slide_inference(const Tensor& images, const std::function<Tensor(const Tensor&)>& logits_fn, Pair crop,
                       Pair stride) {
  if (images.dim() != 4) throw std::invalid_argument("slide_inference: expected images (B, C, H, W), got " + shape_str(images.shape()));
  if (crop[0] <= 0 || crop[1] <= 0 || stride[0] <= 0 || stride[1] <= 0)
    throw std::invalid_argument("slide_inference: expected a positive crop and stride, got crop " + std::to_string(crop[0]) +
                                "x" + std::to_string(crop[1]) + ", stride " + std::to_string(stride[0]) + "x" +
                                std::to_string(stride[1]));
  autograd::NoGradGuard no_grad;
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  const int64_t h_grids = std::max<int64_t>(H - crop[0] + stride[0] - 1, 0) / stride[0] + 1;
  const int64_t w_grids = std::max<int64_t>(W - crop[1] + stride[1] - 1, 0) / stride[1] + 1;
  Tensor preds;                                 // (B, K, H, W), made when K is known
  std::vector<float> count(size_t(H * W), 0.f);  // windows covering each pixel
  for (int64_t r = 0; r < h_grids; ++r)
    for (int64_t c = 0; c < w_grids; ++c) {
      const int64_t y2 = std::min(r * stride[0] + crop[0], H), y1 = std::max<int64_t>(y2 - crop[0], 0);
      const int64_t x2 = std::min(c * stride[1] + crop[1], W), x1 = std::max<int64_t>(x2 - crop[1], 0);
      Tensor logits = logits_fn(images.slice(2, y1, y2).slice(3, x1, x2));
      if (logits.dim() != 4 || logits.size(0) != B || logits.size(2) != y2 - y1 || logits.size(3) != x2 - x1)
        throw std::invalid_argument("slide_inference: logits_fn must return (B, K, h, w) at the window's size (" +
                                    std::to_string(y2 - y1) + "x" + std::to_string(x2 - x1) + "), got " +
                                    shape_str(logits.shape()));
      if (!preds.defined()) preds = zeros({B, logits.size(1), H, W}, DType::f32, images.device());  // the images' device
      Tensor win = preds.slice(2, y1, y2).slice(3, x1, x2);  // a view into preds
      win.copy_(add(win, logits.to(DType::f32)));
      for (int64_t y = y1; y < y2; ++y)
        for (int64_t x = x1; x < x2; ++x) count[size_t(y * W + x)] += 1.f;
    }
  Tensor cnt = empty({1, 1, H, W});
  std::copy(count.begin(), count.end(), cnt.data<float>());
  return div(preds, cnt.to(images.device()));  // every pixel is covered at least once
}

}  // namespace rv::models::seg
