// dropout.h: dropout and drop-path (stochastic depth), with masks from the Philox generator.
//
// Both draw their mask from counter-based random numbers: element i of a call keeps its value iff
// philox_uniform(seed, stream, offset + i) < 1 - p, where `offset` is the range the call reserved
// from the Generator. The mask is a pure function of (seed, stream, offset, i), so it is the same
// for any thread count or layout, and the backward pass recomputes it instead of storing it.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv {

// Zeroes each element with probability p and scales the kept ones by 1 / (1 - p), so the
// expectation is unchanged. Not training, or p = 0: returns x itself. p = 1: zeros.
// Elements are numbered in row-major order of x's shape (not its storage). Differentiable in x.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// Drop-path as timm's DropPath(scale_by_keep=True): one Bernoulli(1 - p) draw per index of the
// leading dim (per sample), which keeps or zeroes that whole sample; kept samples are scaled by
// 1 / (1 - p). Not training, or p = 0: returns x itself. p = 1: zeros. Differentiable in x.
Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace rv
