// reduce.h: reductions over any set of dims (sum, mean, max/argmax, min, var) and
// sum_to_shape, the reduction that undoes broadcasting in backward passes.
#pragma once
#include "engine/tensor.h"

namespace rv {

// Empty `dims` reduces over all dims. Negative dims count from the end.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);

// Sums `g` down to `shape`, which `g`'s shape must be a broadcast of.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

}  // namespace rv
