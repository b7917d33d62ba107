// gemm_operand.h: how a strided (rows x cols) matrix view can be handed to cpu::gemm.
//
// GEMM reads a matrix either row-major (element (i, j) at i*ld + j) or transposed (at
// j*ld + i). A view whose column stride is 1 is the first kind, one whose row stride is 1 the
// second; anything else (e.g. a slice with step 2 in the last dim) must be copied first.
// Size-1 dims may carry any stride, so they do not constrain the choice.
#pragma once
#include <algorithm>
#include <cstdint>

namespace rv::cpu {

struct GemmOperand {
  bool usable = false;  // false: make the view contiguous first
  bool trans = false;   // pass with the transpose flag
  int64_t ld = 1;       // leading dimension to pass
};

inline GemmOperand gemm_operand(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  const int64_t min_ld_rm = std::max<int64_t>(1, cols), min_ld_t = std::max<int64_t>(1, rows);
  if ((col_stride == 1 || cols <= 1) && (rows <= 1 || row_stride >= min_ld_rm))
    return {true, false, rows <= 1 ? min_ld_rm : row_stride};
  if ((row_stride == 1 || rows <= 1) && (cols <= 1 || col_stride >= min_ld_t))
    return {true, true, cols <= 1 ? min_ld_t : col_stride};
  return {};
}

}  // namespace rv::cpu
