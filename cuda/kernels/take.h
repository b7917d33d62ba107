// take.h: launchers for the flat gather and the bucketed scatter-add that gather, scatter_add
// and index_add are made of on a CUDA device. See take.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// out[i] = src[offsets[i]] for i < n, moving raw elements of `itemsize` bytes (1, 2, 4 or 8).
void launch_take(int itemsize, void* out, const void* src, const int64_t* offsets, int64_t n, cudaStream_t stream);

// out[t] = x[t] + sum over j in [off[t], off[t+1]) of src[order[j]], in ascending j, for t < n;
// all contiguous, dtype f32 or f64 (out may not alias x or src).
void launch_scatter_add_buckets(DType dtype, void* out, const void* x, const void* src, const int64_t* off,
                                const int64_t* order, int64_t n, cudaStream_t stream);

}  // namespace rv::cuda
