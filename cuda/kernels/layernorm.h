// layernorm.h: launchers for layer norm over the last C values of a contiguous (rows, C) tensor,
// forward and backward, on a CUDA device. See layernorm.cu for how the kernels work.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// x_dtype: f32 or bf16 (x, y, dy, dx); p_dtype: f32 or bf16 (weight, bias, dweight, dbias).
// The caller checks dtypes, devices and that x, y, dy, dx are contiguous (rows, C).
struct LayerNormArgs {
  DType x_dtype = DType::f32;
  DType p_dtype = DType::f32;
  int64_t rows = 0;
  int64_t C = 0;
};

// y = (x - mean) * rstd * w + b per row; w, b may be null (1, 0). Writes mean and rstd (rows, f32).
void launch_layer_norm_forward(const LayerNormArgs& a, const void* x, const void* w, const void* b, void* y,
                               float* mean, float* rstd, float eps, cudaStream_t stream);

// Floats of device scratch launch_layer_norm_backward needs for dweight / dbias (2 * parts * C).
int64_t layer_norm_backward_scratch(int64_t rows, int64_t C);

// dx (may be null: not wanted), dw and db (each may be null) from dy, x, w (null: ones), mean, rstd.
// `scratch` holds layer_norm_backward_scratch(rows, C) floats (unused when dw and db are null).
// Deterministic: the row partition depends on rows and C only, and partial sums are added in a
// fixed order (no atomics).
void launch_layer_norm_backward(const LayerNormArgs& a, const void* dy, const void* x, const void* w,
                                const float* mean, const float* rstd, void* dx, void* dw, void* db, float* scratch,
                                cudaStream_t stream);

}  // namespace rv::cuda
