// slide_inference.h: mmseg's sliding-window inference (EncoderDecoder.slide_inference).
//
//   images (B, C, H, W); windows of crop (ch, cw) every stride (sh, sw):
//     rows:  h_grids = max(H - ch + sh - 1, 0) / sh + 1, window r covers [y1, y2) with
//            y2 = min(r*sh + ch, H), y1 = max(y2 - ch, 0)   (the last window is moved back inside)
//     (columns alike). Each window's logits (B, K, y2-y1, x2-x1), from logits_fn at the window's
//     own size, are added into preds (B, K, H, W) and count (H, W) is incremented there;
//     the result is preds / count: every pixel the mean of the windows that cover it.
// A window covering the whole image (ch >= H and cw >= W) gives logits_fn(images) exactly.
#pragma once
#include <functional>

#include "engine/ops/conv.h"
#include "engine/tensor.h"

namespace rv::models::seg {

// logits_fn: crop (B, C, h, w) -> logits (B, K, h, w). Runs under NoGradGuard; returns (B, K, H, W) f32 on
// the images' device (the sums and the count live there).
Tensor slide_inference(const Tensor& images, const std::function<Tensor(const Tensor&)>& logits_fn, Pair crop,
                       Pair stride);

}  // namespace rv::models::seg
