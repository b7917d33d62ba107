// pad_batch.h: batching images of different sizes (detection), as mmdet's DetDataPreprocessor
// does: each normalised (C, h, w) image goes into the top-left corner of a (B, C, H, W) tensor,
// H = max(the batch's largest h rounded up to a multiple of size_divisor, min_height), W
// likewise (stack_batch, then BatchFixedSizePad for LSJ); the rest (bottom, right) is `value`.
//
// mmdet pads AFTER normalising (mmengine's ImgDataPreprocessor: (x - mean) / std, then
// stack_batch(pad_value=0)), so the padding is 0 in normalised units: the mean colour, not
// black. That is the default here; BatchFixedSizePad's img_pad_value is 0 too.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rv::data {

struct PadOptions {
  int64_t size_divisor = 32;              // mmdet's pad_size_divisor (1: no rounding)
  int64_t min_height = 0, min_width = 0;  // e.g. 1024 x 1024 for LSJ (BatchFixedSizePad)
  float value = 0;                        // in normalised units
};

// The (B, C, H, W) shape for images of these (C, h, w) shapes; all must have the same C.
// Throws std::invalid_argument naming the image that differs, or bad options.
Shape padded_batch_shape(const std::vector<Shape>& shapes, const PadOptions& opt);
// Writes image r (contiguous or not, f32 (C, h, w)) into row r of `out` (contiguous f32 of
// padded_batch_shape), padding the rest of the row with opt.value.
void pad_into(const Tensor& image, const PadOptions& opt, const Tensor& out_row);

}  // namespace rv::data
