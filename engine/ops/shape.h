// shape.h: ops that rearrange whole tensors: cat, stack, split, chunk, roll, flip, repeat, and
// Swin's window_partition / window_reverse. All are differentiable in every float input and
// work for any dtype (they only move elements).
//
// split and chunk return views (narrow), so they cost nothing and share the input's storage.
// cat, stack, roll, flip and repeat return fresh contiguous tensors.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace rv {

// Joins tensors along an existing dim. All must have the same dtype (cat does not promote) and
// the same shape except in `dim`. As in PyTorch, 1-D empty tensors (shape [0]) are skipped.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Joins same-shaped tensors along a new dim at position `dim` (in [-(ndim+1), ndim]).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Views of consecutive pieces of `split_size` along dim (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
// Views of pieces with the given sizes, which must sum to x.size(dim).
std::vector<Tensor> split(const Tensor& x, const Shape& sizes, int64_t dim = 0);
// torch.chunk: pieces of ceil(size / chunks) along dim, so possibly fewer than `chunks`.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// Cyclic shift: out[..., (i + shift) mod n, ...] = x[..., i, ...] for each (shift, dim) pair.
// Shifts may be negative or larger than the size. With `dims` empty, x is rolled as if
// flattened (one shift), as torch.roll does.
Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims);

// Reverses the order of elements along each dim in `dims`.
Tensor flip(const Tensor& x, const Shape& dims);

// torch.repeat: tiles x repeats[d] times along each dim; repeats may have more entries than
// x has dims (new leading dims).
Tensor repeat(const Tensor& x, const Shape& repeats);

// Swin window partition (spec/rope-vit.md section 6):
//   x (B, H, W, C)  ->  (B * nW, ws * ws, C), nW = (H / ws) * (W / ws),
// window index = b * nW + wr * (W / ws) + wc, tokens row-major inside a window.
// H and W must be multiples of ws.
Tensor window_partition(const Tensor& x, int64_t ws);
// The exact inverse: windows (B * nW, ws * ws, C)  ->  (B, H, W, C).
Tensor window_reverse(const Tensor& windows, int64_t ws, int64_t H, int64_t W);

}  // namespace rv
