// loops.h: strided N-d iteration for elementwise CPU kernels.
//
// An elementwise op over K operands (outputs and inputs) is described by one common shape
// and, per operand, element strides over that shape (stride 0 = broadcast). loop_nd merges
// dims that are contiguous for every operand, then hands the kernel one "row" at a time:
// base offsets plus the innermost stride of each operand and the row length. Kernels branch
// on unit inner strides so the compiler can vectorise the common dense case.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "engine/cpu/parallel.h"
#include "engine/tensor.h"

namespace rv::cpu {

// Strides of `t` when broadcast to `shape` (right-aligned; 0 where t has size 1 or no dim).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

// The shape two shapes broadcast to, or an error naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

template <size_t K>
struct NdLoop {
  Shape shape;                               // merged shape; last dim is the row
  std::array<Shape, K> strides;              // merged strides per operand

  NdLoop(const Shape& full_shape, const std::array<Shape, K>& full_strides) {
    // Drop size-1 dims, then merge neighbours that are contiguous for every operand.
    for (size_t d = 0; d < full_shape.size(); ++d) {
      if (full_shape[d] == 1) continue;
      shape.push_back(full_shape[d]);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(full_strides[k][d]);
    }
    for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d) {
      bool mergeable = true;
      for (size_t k = 0; k < K; ++k)
        mergeable = mergeable && strides[k][d] == strides[k][d + 1] * shape[d + 1];
      if (!mergeable) continue;
      shape[d] *= shape[d + 1];
      shape.erase(shape.begin() + d + 1);
      for (size_t k = 0; k < K; ++k) {
        strides[k][d] = strides[k][d + 1];
        strides[k].erase(strides[k].begin() + d + 1);
      }
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(0);
    }
  }

  // f(const std::array<int64_t,K>& base, const std::array<int64_t,K>& inner_stride, int64_t n)
  template <class F>
  void run(F&& f, int64_t grain_elems = 32768) const {
    const int64_t nd = int64_t(shape.size());
    const int64_t row = shape[nd - 1];
    int64_t rows = 1;
    for (int64_t d = 0; d + 1 < nd; ++d) rows *= shape[d];
    if (rows == 0 || row == 0) return;
    std::array<int64_t, K> inner;
    for (size_t k = 0; k < K; ++k) inner[k] = strides[k][nd - 1];
    if (row > grain_elems) {
      // A long row (e.g. a whole contiguous tensor, merged into one row) would run on one
      // thread if rows were the unit of work: cut each row into pieces of about grain_elems.
      const int64_t pieces = (row + grain_elems - 1) / grain_elems;
      const int64_t piece = (row + pieces - 1) / pieces;
      parallel_for(rows * pieces, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t start = (t % pieces) * piece;
          std::array<int64_t, K> base{};
          int64_t rem = t / pieces;
          for (int64_t d = nd - 2; d >= 0; --d) {
            for (size_t k = 0; k < K; ++k) base[k] += (rem % shape[d]) * strides[k][d];
            rem /= shape[d];
          }
          for (size_t k = 0; k < K; ++k) base[k] += start * inner[k];
          f(base, inner, std::min(piece, row - start));
        }
      });
      return;
    }
    int64_t grain_rows = grain_elems / row > 0 ? grain_elems / row : 1;
    parallel_for(rows, grain_rows, [&](int64_t r0, int64_t r1) {
      // offsets of row r0, then advanced like an odometer
      std::vector<int64_t> idx(nd > 1 ? nd - 1 : 1, 0);
      std::array<int64_t, K> base{};
      int64_t rem = r0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
        for (size_t k = 0; k < K; ++k) base[k] += idx[d] * strides[k][d];
      }
      for (int64_t r = r0; r < r1; ++r) {
        f(base, inner, row);
        for (int64_t d = nd - 2; d >= 0; --d) {
          for (size_t k = 0; k < K; ++k) base[k] += strides[k][d];
          if (++idx[d] < shape[d]) break;
          for (size_t k = 0; k < K; ++k) base[k] -= strides[k][d] * shape[d];
          idx[d] = 0;
        }
      }
    });
  }
};

}  // namespace rv::cpu
