// reduce_kernel.h: the CPU skeleton shared by the reductions (sum, mean, max, var, ...).
//
// A reduction keeps some dims and folds the others. ReducePlan splits the input's dims into
// kept dims (one output element per combination) and reduced dims, and offers two walks:
//   for_each_output: parallel over output elements, each folding its reduced elements
//                    (good when the reduced dims are innermost in memory);
//   for_each_output_tile: parallel over tiles of outputs that are contiguous in the input's
//                    last kept dim, each folding whole rows (good when reducing over leading
//                    dims, e.g. a bias gradient: sum of (B, N, C) over B and N).
#pragma once
#include <vector>

#include "engine/cpu/parallel.h"
#include "engine/tensor.h"

namespace rv::cpu {

struct ReducePlan {
  Shape out_shape;         // with keepdim: 1 in reduced dims
  Shape kept_shape, kept_strides;        // input strides over kept dims
  Shape red_shape, red_strides;          // input strides over reduced dims
  int64_t out_numel = 1, red_numel = 1;

  // dims must already be wrapped and unique; empty = all.
  ReducePlan(const Tensor& x, const std::vector<bool>& reduced, bool keepdim);

  // Input offset (relative to x's data pointer) of the first element for output index o.
  int64_t base_offset(int64_t o) const {
    int64_t off = 0;
    for (int64_t d = int64_t(kept_shape.size()) - 1; d >= 0; --d) {
      off += (o % kept_shape[d]) * kept_strides[d];
      o /= kept_shape[d];
    }
    return off;
  }

  // Calls f(offset) for each reduced element's offset relative to a base, in row-major order.
  template <class F>
  void for_each_reduced(F&& f) const {
    const int64_t nd = int64_t(red_shape.size());
    if (nd == 0) { f(int64_t(0)); return; }
    if (red_numel == 0) return;
    std::vector<int64_t> idx(nd, 0);
    int64_t off = 0;
    const int64_t inner = red_shape[nd - 1], inner_stride = red_strides[nd - 1];
    while (true) {
      for (int64_t i = 0; i < inner; ++i) f(off + i * inner_stride);
      int64_t d = nd - 2;
      for (; d >= 0; --d) {
        off += red_strides[d];
        if (++idx[d] < red_shape[d]) break;
        off -= red_strides[d] * red_shape[d];
        idx[d] = 0;
      }
      if (d < 0) return;
    }
  }
};

std::vector<bool> reduced_dims_mask(const Tensor& x, const Shape& dims, const char* op);

}  // namespace rv::cpu
