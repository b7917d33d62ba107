// reduce.h: reductions over any set of dims (sum, mean, max/argmax, min, var) and
// sum_to_shape, the reduction that undoes broadcasting in backward passes.
#pragma once
#include "engine/tensor.h"

namespace rv {

// Empty `dims` reduces over all dims. Negative dims count from the end.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);

// ---- max / min (engine/ops/reduce_minmax.cpp) -----------------------------------------------
// Any dtype. NaN propagates: a slice holding a NaN has max/min NaN and its index is the first
// NaN's. An empty input (or reduced dim of size 0) is an error, as in PyTorch.

// Over all elements, a 0-d tensor. The gradient is shared evenly among the elements equal to
// the result (PyTorch's rule for the all-elements max/min).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);

struct ValuesIndices {
  Tensor values;   // x's dtype, differentiable
  Tensor indices;  // i64, positions along `dim`
};
// Along one dim. Ties pick the first index (as PyTorch's CPU kernel); the gradient of
// `values` goes to that element only.
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- var (engine/ops/reduce_var.cpp) -------------------------------------------------------
// Variance over `dims` (empty = all): sum((x - mean)^2) / (n - correction). correction = 1 is
// the unbiased estimate (torch.var's default), 0 the population variance. n - correction <= 0
// gives inf/NaN, as PyTorch (which also warns). Float dtypes; accumulates in f64.
Tensor var(const Tensor& x, const Shape& dims = {}, double correction = 1.0, bool keepdim = false);

// Sums `g` down to `shape`, which `g`'s shape must be a broadcast of.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

}  // namespace rv
