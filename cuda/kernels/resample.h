// resample.h: launchers for interpolate's separable resampling on a CUDA device (every mode:
// nearest, linear, bilinear, bicubic, antialiased), forward and backward. See resample.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// The device tables of one call over P planes (H, W) -> (OH, OW), all device pointers.
// Forward: output row oh reads hn[oh] input rows hidx[oh*KH + i] with weights hw[oh*KH + i];
// output column ow likewise from (wn, widx, ww, KW). Backward (the inverse tables, CSR): input
// row h is read by the entries hoff[h] .. hoff[h+1] of (hout, hwt): (output row, weight), in the
// order the CPU adds them; columns likewise (woff, wout, wwt). Weights are in the data's dtype T.
// h_identity / w_identity: that dim is copied, not resampled (the CPU skips its pass).
struct ResampleTables {
  int64_t P, H, W, OH, OW, KH, KW;
  bool h_identity, w_identity;
  const int64_t *hn, *hidx, *wn, *widx;
  const void *hw, *ww;
  const int64_t *hoff, *hout, *woff, *wout;
  const void *hwt, *wwt;
};

// out (P, OH, OW) from x (P, H, W), both contiguous; dtype f32 or f64.
void launch_resample_forward(DType dtype, void* out, const void* x, const ResampleTables& t, cudaStream_t stream);

// dx (P, H, W) from g (P, OH, OW), both contiguous: one thread per input cell gathers the
// output gradients it fed through the inverse tables (no atomics).
void launch_resample_backward(DType dtype, void* dx, const void* g, const ResampleTables& t, cudaStream_t stream);

}  // namespace rv::cuda
