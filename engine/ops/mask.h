// mask.h: masked_fill, for attention masks and losses that ignore some positions.
// (one_hot, the other helper losses use, lives in index.h with the other index ops.)
#pragma once
#include "engine/tensor.h"

namespace rv {

// Out-of-place: a copy of x with `value` wherever mask is true. mask is a bool tensor that
// broadcasts to x's shape; the result has x's shape and dtype. Differentiable in x: the
// gradient is zero where the value was filled in.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace rv
