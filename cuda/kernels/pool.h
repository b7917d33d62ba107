// pool.h: launchers for 2-D max / average pooling (sliding and adaptive windows) on a CUDA
// device, forward and backward. See pool.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// How an average's divisor is formed (engine/ops/pool.cpp's AvgRule): `clipped` the real cells
// of the window, `padded` the window clipped to the padded input, `fixed` a given value,
// `adaptive` the window's height then its width (two divisions, as PyTorch). `max`: max pool.
enum class PoolMode : uint8_t { max, avg_clipped, avg_padded, avg_fixed, avg_adaptive };

// The device tables of one pooling call over P planes (H, W) -> (OH, OW). hspan / wspan: OH / OW
// triples (lo, hi, padded): output row oh reads input rows lo, lo + step_h, ... < hi (likewise for
// columns). hoff (H + 1) / hlist: for each input row h, the output rows oh with lo <= h < hi in
// ascending order (CSR); likewise woff (W + 1) / wlist for columns. All int64 device pointers.
struct PoolTables {
  int64_t P, H, W, OH, OW, step_h, step_w, divisor;
  const int64_t *hspan, *wspan, *hoff, *hlist, *woff, *wlist;
};

// out (P, OH, OW) from x (P, H, W), both contiguous; idx (P, OH, OW) int64 (max only: the flat
// h*W+w of the first maximum, a NaN winning). dtype f32 or f64.
void launch_pool_forward(PoolMode mode, DType dtype, void* out, int64_t* idx, const void* x, const PoolTables& t,
                         cudaStream_t stream);

// dx (P, H, W) from g (P, OH, OW) (and idx for max), both contiguous: one thread per input cell
// sums, in ascending (oh, ow), the output gradients it contributed to.
void launch_pool_backward(PoolMode mode, DType dtype, void* dx, const void* g, const int64_t* idx,
                          const PoolTables& t, cudaStream_t stream);

}  // namespace rv::cuda
