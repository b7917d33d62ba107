// ref_loops.h: tiny helpers for the plain reference loops in op tests.
//
// References work on std::vector<double> in row-major order, computed with nothing from the
// engine except to_double_vector and from_vector, so a bug in a kernel cannot hide in its
// reference. ref_broadcast expands a tensor's values to a broadcast shape by explicit index
// arithmetic; multi_index / flat_index convert between flat positions and coordinates.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rv::test {

// Coordinates of flat position `flat` in a row-major tensor of `shape`.
inline std::vector<int64_t> multi_index(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

// Row-major flat position of coordinates `idx` in `shape`.
inline int64_t flat_index(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

// t's values broadcast (right-aligned, size-1 dims repeated) to `shape`, row-major.
inline std::vector<double> ref_broadcast(const Tensor& t, const Shape& shape) {
  const std::vector<double> v = t.to_double_vector();
  const Shape& ts = t.shape();
  const size_t lead = shape.size() - ts.size();
  std::vector<double> out(size_t(shape_numel(shape)));
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    std::vector<int64_t> idx = multi_index(i, shape), tidx(ts.size());
    for (size_t d = 0; d < ts.size(); ++d) tidx[d] = ts[d] == 1 ? 0 : idx[lead + d];
    out[i] = v[flat_index(tidx, ts)];
  }
  return out;
}

// Calls f(coord) for every coordinate of `shape` in row-major order.
template <class F>
void for_each_coord(const Shape& shape, F&& f) {
  const int64_t n = shape_numel(shape);
  Shape c(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    f(c);
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

}  // namespace rv::test
