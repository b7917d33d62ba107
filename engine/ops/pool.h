// pool.h: 2-D max / average pooling and their adaptive forms, forward and backward.
//
// Inputs are (B, C, H, W) or (C, H, W); each of the B*C planes is pooled on its own.
// kernel, stride, padding and dilation take one value (used for H and W) or two (H, W);
// an empty stride means stride = kernel, as in PyTorch.
//
// Output size per dim (PyTorch's rule):
//   out = floor((in + 2*pad - dilation*(k-1) - 1 [+ stride-1 if ceil_mode]) / stride) + 1
//   and with ceil_mode the last window must start inside the input or the left padding:
//   if (out-1)*stride >= in + pad then out -= 1.
// Max pooling treats padding as -inf and keeps the first maximum on ties (a NaN wins);
// the flat h*W+w index of each maximum is saved for backward.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rv {

Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride = {},
                  const std::vector<int64_t>& padding = {0}, const std::vector<int64_t>& dilation = {1},
                  bool ceil_mode = false);
// The same, plus the i64 indices (flat h*W+w within each plane) of the chosen elements.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const std::vector<int64_t>& kernel,
                                                  const std::vector<int64_t>& stride = {},
                                                  const std::vector<int64_t>& padding = {0},
                                                  const std::vector<int64_t>& dilation = {1}, bool ceil_mode = false);

// Divisor: divisor_override if given, else the window size counting padding
// (count_include_pad, clipped at the right/bottom padding edge) or only real elements.
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride = {},
                  const std::vector<int64_t>& padding = {0}, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);

// Output cell i of a dim covers input [floor(i*In/Out), ceil((i+1)*In/Out)).
Tensor adaptive_avg_pool2d(const Tensor& x, const std::vector<int64_t>& output_size);
Tensor adaptive_max_pool2d(const Tensor& x, const std::vector<int64_t>& output_size);
std::pair<Tensor, Tensor> adaptive_max_pool2d_with_indices(const Tensor& x, const std::vector<int64_t>& output_size);

// One dim of the pooling output size (the formula above); exposed for tests and layers.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode);

}  // namespace rv
