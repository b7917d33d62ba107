// minmax_dim.h: launchers for max / min / argmax / argmin along one dim on a CUDA device, and for
// their backward (the gradient scattered to the chosen index).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rv::cuda {

// For each output o (row-major over x's dims without `dim`): the best of the `len` elements
// x[base(o) + j * stride], best = the first NaN if any, else the first strictly greatest (is_max)
// or least. x: f32, f64 or bf16; shape/strides: x's; dim: the reduced dim. indices (i64) and
// values (x's dtype, or null for argmax / argmin): contiguous, one per output.
void launch_minmax_dim(DType dtype, const void* x, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides, int64_t dim, bool is_max, void* values, int64_t* indices,
                       cudaStream_t stream);

// grad (contiguous, already zero, `outer` x `len` x `inner` elements of `itemsize` bytes):
// grad[(o / inner * len + indices[o]) * inner + o % inner] = g[o] for o < outer * inner.
void launch_minmax_scatter(size_t itemsize, void* grad, const void* g, const int64_t* indices, int64_t outer,
                           int64_t len, int64_t inner, cudaStream_t stream);

}  // namespace rv::cuda
