// loops.cpp: broadcasting rules shared by every elementwise kernel.
#include "engine/cpu/loops.h"

#include <stdexcept>

namespace rv::cpu {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                                  " do not broadcast (dim " + std::to_string(i) + ": " + std::to_string(da) +
                                  " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  const size_t n = shape.size(), m = size_t(t.dim());
  if (m > n)
    throw std::invalid_argument("broadcast: tensor of shape " + shape_str(t.shape()) + " cannot broadcast to " +
                                shape_str(shape));
  Shape st(n, 0);
  for (size_t i = 0; i < m; ++i) {
    int64_t have = t.shape()[i], want = shape[n - m + i];
    if (have == want)
      st[n - m + i] = want == 1 ? 0 : t.strides()[i];
    else if (have == 1)
      st[n - m + i] = 0;
    else
      throw std::invalid_argument("broadcast: tensor of shape " + shape_str(t.shape()) + " cannot broadcast to " +
                                  shape_str(shape));
  }
  return st;
}

}  // namespace rv::cpu
