// index.h: ops that pick or place elements by integer index: embedding, index_select,
// index_add, gather, scatter_add, and one_hot.
//
// Index tensors are int64 or int32, any shape and strides. Every index is checked before any
// work is done; an index outside its range is an std::out_of_range that names the op, the bad
// value, its position and the valid range. Negative indices are refused (as PyTorch does for
// these ops). The ops that add into a tensor (index_add, scatter_add, and the backward passes
// of embedding, index_select and gather) are deterministic: every output element is written by
// one thread, which adds its contributions in ascending index-position order.
#pragma once
#include "engine/tensor.h"

namespace rv {

// weight (V, C), indices (*S) integer in [0, V)  ->  (*S, C). Differentiable in weight; rows
// picked several times get the sum of their gradients.
Tensor embedding(const Tensor& weight, const Tensor& indices);

// Picks the slices x[..., index[k], ...] along `dim`. index is 1-D (or 0-d, as one element)
// with values in [0, x.size(dim)); the result has x's shape with size(dim) = index.numel().
// Differentiable in x.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// Out-of-place: returns x with src's slice k added into x's slice index[k] along `dim`
// (torch.index_add). src has x's shape except size(dim) = index.numel(). Differentiable in x
// and src.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (likewise for any dim). index has x's
// number of dims and index.size(d) <= x.size(d) for d != dim; out has index's shape.
// Differentiable in x (its gradient is a scatter_add).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// Out-of-place torch.scatter_add: returns a copy of x with out[i][index[i][j][k]][k] +=
// src[i][j][k] for dim = 1, for every position of index. index.size(d) <= src.size(d) for all
// d and <= x.size(d) for d != dim; src elements outside index's shape are ignored.
// Differentiable in x (identity) and src (a gather; zero where index does not reach).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// indices (*S) integer in [0, num_classes)  ->  int64 (*S, num_classes) of 0/1.
// num_classes = -1 uses max(indices) + 1. Not differentiable.
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);

}  // namespace rv
