// reduce_dims.h: plan and launcher for the sum over a subset of dims of a strided f32 / f64 /
// bf16 array on a CUDA device (sum(x, dims), mean, sum_to_shape).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rv::cuda {

// The dims of x split into kept (the output's, row-major) and reduced, each with size-1 dims
// dropped and contiguous neighbours merged, plus the kernel choice. Depends on the shape and
// strides only, so the order of every sum (and so its bits) is fixed by them.
struct SumDimsPlan {
  std::vector<int64_t> kept_sizes, kept_strides;  // outputs: product of kept_sizes
  std::vector<int64_t> red_sizes, red_strides;    // summed elements per output: product of red_sizes
  int64_t out_numel = 1, red_numel = 1;
  bool columns = false;  // true: thread per output (kept stride-1 dim); false: a group per output
  int64_t chunks = 1;    // columns: the reduced elements are split in this many partial sums
  int64_t scratch_doubles() const { return columns && chunks > 1 ? chunks * out_numel : 0; }
};

// shape/strides: x's; reduced: one flag per dim.
SumDimsPlan plan_sum_dims(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                          const std::vector<bool>& reduced);

// out (contiguous, plan.out_numel elements of dtype) = the sums. scratch: plan.scratch_doubles()
// doubles of device memory (may be null when that is 0).
void launch_sum_dims(const SumDimsPlan& plan, DType dtype, void* out, const void* x, double* scratch,
                     cudaStream_t stream);

}  // namespace rv::cuda
