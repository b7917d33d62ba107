// index.h: launchers for index_select on a CUDA device, forward (a gather of slices) and backward
// (a deterministic scatter-add written as a gather over a bucketed index). See index.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// out (outer, K, inner) = x (outer, S, inner)[:, idx[k], :]; both contiguous. itemsize: 2, 4 or 8
// (the copy moves raw elements, so any dtype of that size). idx: K device int64 in [0, S).
void launch_index_select(int itemsize, void* out, const void* x, const int64_t* idx, int64_t outer, int64_t S,
                         int64_t K, int64_t inner, cudaStream_t stream);

// dx (outer, S, inner) = for each s, the sum over j in [offsets[s], offsets[s+1]) of
// g (outer, K, inner)[:, order[j], :], in ascending j; both contiguous; dtype f32 or f64.
// offsets: S + 1 device int64; order: K device int64 (positions k grouped by idx[k], ascending
// within a group: the host's stable counting sort).
void launch_index_select_backward(DType dtype, void* dx, const void* g, const int64_t* offsets, const int64_t* order,
                                  int64_t outer, int64_t S, int64_t K, int64_t inner, cudaStream_t stream);

}  // namespace rv::cuda
