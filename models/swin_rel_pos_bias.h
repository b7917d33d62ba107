// swin_rel_pos_bias.h: Swin's relative position bias (RPB): the index that maps a pair of tokens
// of a window to a row of the learned table, the gather that turns the table into a bias, and the
// resize of a table to another window size (spec/rope-vit.md section 6).
//
//   table ((2wh-1)(2ww-1), NH)   one learned value per head and per 2-D offset between two tokens
//   index (N, N) int64           N = wh*ww tokens of a window, row-major:
//                                idx[i, j] = (r_i - r_j + wh - 1) * (2ww - 1) + (c_i - c_j + ww - 1)
//   bias  (NH, N, N)             bias[h, i, j] = table[idx[i, j], h], added to the scaled q kᵀ
//
// resize_rel_pos_bias_table is what evaluates an RPB model at another resolution (the window
// follows the image: ws = img // 32): the table, seen as an image (1, NH, 2ws-1, 2ws-1), goes
// through bicubic interpolation (A = -0.75, align_corners false, no antialias) to 2ws'-1, as NV's
// SwinTransformer/utils.py load_pretrained does. The checkpoint converter calls it as well.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::models {

// (wh*ww, wh*ww) int64, the formula above (timm's get_relative_position_index).
Tensor relative_position_index(int64_t wh, int64_t ww);

// table ((2wh-1)(2ww-1), NH) float, index (N, N) from relative_position_index(wh, ww)
// -> (NH, N, N) contiguous. Differentiable w.r.t. the table (a gather: gradients add up per row).
Tensor relative_position_bias(const Tensor& table, const Tensor& index);

// table ((2*old_ws-1)^2, NH) -> ((2*new_h-1)(2*new_w-1), NH), bicubic as described above; the
// table itself (not a copy) when the size does not change. Throws naming the argument when the
// table is not 2-D or its rows do not match old_ws. Differentiable (interpolate is).
Tensor resize_rel_pos_bias_table(const Tensor& table, int64_t old_ws, int64_t new_ws);
Tensor resize_rel_pos_bias_table(const Tensor& table, int64_t old_ws, int64_t new_h, int64_t new_w);

}  // namespace rv::models
