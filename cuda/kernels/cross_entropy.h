// cross_entropy.h: launchers for cross entropy with the softmax fused, for class-index targets
// over contiguous (rows, K) logits (kernels and their design: cross_entropy.cu).
//
// dtype is the logits' dtype: f32, bf16 or f64 (the caller checks). The per-row buffers (loss,
// lse, valid, count) are in its math type: f32 for f32 / bf16 logits, f64 for f64.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// Per row r with y = target[r]:
//   lse[r]   = log sum_c exp(logits[r, c])
//   loss[r]  = (1 - s) (lse - logits[r, y]) + (s / K) sum_c (lse - logits[r, c])   (s: smoothing)
//   valid[r] = 1
// and for y == ignore_index: loss[r] = 0, valid[r] = 0; for y outside [0, K): loss[r] = NaN,
// valid[r] = 1 (a NaN loss rather than a host round trip to check the targets).
void launch_cross_entropy_forward(DType dtype, const void* logits, const int64_t* target, int64_t rows, int64_t K,
                                  int64_t ignore_index, double smoothing, void* loss, void* lse, void* valid,
                                  cudaStream_t stream);

// One block, deterministic: *count = sum(valid), *out (logits' dtype) = sum(loss), divided by
// sum(valid) when `mean` (0 / 0 = NaN: a mean over nothing). Sums in double.
void launch_cross_entropy_reduce(DType dtype, const void* loss, const void* valid, int64_t rows, bool mean,
                                 void* out, void* count, cudaStream_t stream);

// out[r] = loss[r] rounded to the logits' dtype (reduction none of bf16 logits).
void launch_cross_entropy_cast(DType dtype, const void* loss, void* out, int64_t rows, cudaStream_t stream);

// dlogits[r, c] = g_r (exp(logits[r, c] - lse[r]) (1 - s + s) - s / K) - [c == y_r] g_r (1 - s)
// in one pass, 0 on ignored rows (NaN on rows whose target is out of range). g_r = grad[r] when
// grad_per_row (reduction none), else grad[0], divided by *count when count is not null (mean).
// grad is in the logits' dtype; count and lse in the math type.
void launch_cross_entropy_backward(DType dtype, const void* grad, bool grad_per_row, const void* count,
                                   const void* logits, const int64_t* target, const void* lse, int64_t rows, int64_t K,
                                   int64_t ignore_index, double smoothing, void* dlogits, cudaStream_t stream);

}  // namespace rv::cuda
