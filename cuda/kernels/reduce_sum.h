// reduce_sum.h: launcher for the sum of all elements of a contiguous f32 / f64 array.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// How many f64 partial sums launch_sum_all needs as scratch for n elements.
int sum_all_partials(int64_t n);

// *out (one element of `dtype`) = sum of x[0..n). `partials` is device scratch of
// sum_all_partials(n) doubles. Deterministic: the split into blocks depends on n only.
void launch_sum_all(DType dtype, const void* x, int64_t n, void* out, double* partials, cudaStream_t stream);

}  // namespace rv::cuda
