// pad.h: F.pad — constant, reflect, replicate and circular padding, forward and backward.
//
//   pad(x, {1, 2})                  last dim: 1 before, 2 after (zeros)
//   pad(x, {1, 1, 2, 0}, "reflect") last dim 1|1, second-to-last 2|0
//
// `pads` lists (before, after) pairs starting from the LAST dim, as PyTorch does.
//   constant:  any number of dims (up to x.dim()); negative pads crop.
//   reflect:   mirror without repeating the edge (pad < size of the dim).
//   replicate: repeat the edge element.
//   circular:  wrap around (after cropping by negative pads; pad <= cropped size).
// The last three pad 1, 2 or 3 trailing dims of an input with one or two leading dims,
// e.g. (C, W) or (B, C, W) for one padded dim, as PyTorch allows.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rv {

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode = "constant",
           double value = 0.0);

}  // namespace rv
