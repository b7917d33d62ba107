// swin_rel_pos_bias.cpp: the RPB index, the table gather and the bicubic table resize.
#include "models/swin_rel_pos_bias.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops/index.h"
#include "engine/ops/interpolate.h"

namespace rv::models {

Tensor relative_position_index(int64_t wh, int64_t ww) {
  if (wh <= 0 || ww <= 0)
    throw std::invalid_argument("relative_position_index: window must be positive, got " + std::to_string(wh) + "x" +
                                std::to_string(ww));
  const int64_t N = wh * ww;
  std::vector<int64_t> idx(size_t(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const int64_t dr = i / ww - j / ww + wh - 1;  // row offset, shifted to start at 0
      const int64_t dc = i % ww - j % ww + ww - 1;  // column offset
      idx[size_t(i * N + j)] = dr * (2 * ww - 1) + dc;
    }
  return from_vector(idx, {N, N});
}

Tensor relative_position_bias(const Tensor& table, const Tensor& index) {
  if (table.dim() != 2)
    throw std::invalid_argument("relative_position_bias: expected table ((2wh-1)(2ww-1), NH), got " +
                                shape_str(table.shape()));
  if (index.dim() != 2 || index.size(0) != index.size(1))
    throw std::invalid_argument("relative_position_bias: expected index (N, N), got " + shape_str(index.shape()));
  const int64_t N = index.size(0), NH = table.size(1);
  // (N*N, NH) rows picked by the index -> (N, N, NH) -> (NH, N, N)
  return index_select(table, 0, index.reshape({N * N})).reshape({N, N, NH}).permute({2, 0, 1}).contiguous();
}

Tensor resize_rel_pos_bias_table(const Tensor& table, int64_t old_ws, int64_t new_h, int64_t new_w) {
  const std::string where = "resize_rel_pos_bias_table";
  if (old_ws <= 0 || new_h <= 0 || new_w <= 0)
    throw std::invalid_argument(where + ": window sizes must be positive, got old_ws " + std::to_string(old_ws) +
                                " and new " + std::to_string(new_h) + "x" + std::to_string(new_w));
  const int64_t S = 2 * old_ws - 1;
  if (table.dim() != 2 || table.size(0) != S * S)
    throw std::invalid_argument(where + ": expected table of shape (" + std::to_string(S * S) + ", NH) for old_ws " +
                                std::to_string(old_ws) + ", got " + shape_str(table.shape()));
  const int64_t Sh = 2 * new_h - 1, Sw = 2 * new_w - 1, NH = table.size(1);
  if (Sh == S && Sw == S) return table;
  // (S*S, NH) -> (1, NH, S, S): the offsets as an image per head, rows = row offsets.
  Tensor img = table.transpose(0, 1).reshape({1, NH, S, S});
  Tensor out = interpolate(img, {.size = {Sh, Sw}, .mode = "bicubic", .align_corners = false});
  return out.reshape({NH, Sh * Sw}).transpose(0, 1).contiguous();
}

Tensor resize_rel_pos_bias_table(const Tensor& table, int64_t old_ws, int64_t new_ws) {
  return resize_rel_pos_bias_table(table, old_ws, new_ws, new_ws);
}

}  // namespace rv::models
