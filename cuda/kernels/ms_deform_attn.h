// ms_deform_attn.h: launchers for multi-scale deformable attention on a CUDA device, forward and
// backward (engine/ops/ms_deform_attn.h defines the op). See ms_deform_attn.cu for the kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// The sizes of one call. value (B, S, NH, HD), locations (B, Q, NH, L, P, 2), weights
// (B, Q, NH, L, P), out and its gradient (B, Q, NH*HD): all contiguous, one dtype (f32 or f64).
// levels: a device array (L, 3) int64 of (H_l, W_l, start_l), start_l the first token of level l in S.
struct MsdaDims {
  int64_t B = 0, S = 0, NH = 0, HD = 0, Q = 0, L = 0, P = 0;
  const int64_t* levels = nullptr;
};

// out (B, Q, NH*HD) = the op's forward; every element is written.
void launch_ms_deform_attn_forward(DType dtype, const void* value, const void* loc, const void* attn, void* out,
                                   const MsdaDims& d, cudaStream_t stream);

// The backward from g (B, Q, NH*HD). dvalue (value's shape) must hold zeros on entry: the kernel adds
// into it with atomics. dloc and dattn are written in full. Any of the three may be null (not needed).
void launch_ms_deform_attn_backward(DType dtype, const void* g, const void* value, const void* loc, const void* attn,
                                    void* dvalue, void* dloc, void* dattn, const MsdaDims& d, cudaStream_t stream);

}  // namespace rv::cuda
