// dropout.h: launcher for dropout / drop_path's masked scale on a CUDA device, with the keep mask
// drawn on the device from the same Philox words as the CPU's (engine/rng.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// What decides the mask; the same fields as the CPU's MaskSpec in engine/ops/dropout.cpp.
struct DropoutSpec {
  uint64_t seed = 0, stream = 0, offset = 0;  // Philox key, stream and the call's first word
  double keep = 1.0;                          // 1 - p
  int64_t group = 1;                          // elements per draw: 1 (dropout) or a sample (drop_path)
};

// y[i] = kept(i / group) ? x[i] * scale : 0 for i < n; x and y contiguous, dtype f32, f64 or bf16
// (bf16: f32 math, rounded once).
void launch_dropout(DType dtype, void* y, const void* x, int64_t n, const DropoutSpec& spec, cudaStream_t stream);

}  // namespace rv::cuda
