// print.cpp: Tensor::str(), a printout in PyTorch's style:
//   tensor([[ 1.0000, -2.5000],
//           [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32)
// Floats use 4 decimals, or scientific notation when the magnitudes span too much; tensors
// over 1000 elements show the first and last 3 entries of each dim around "...".
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace rv {

namespace {

struct Format {
  bool floating = true, scientific = false, integral_floats = false;
  int width = 1;
  std::string fmt(double v) const {
    char buf[64];
    if (!floating) {
      std::snprintf(buf, sizeof buf, "%lld", (long long)v);
    } else if (std::isnan(v)) {
      std::snprintf(buf, sizeof buf, "nan");
    } else if (std::isinf(v)) {
      std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
    } else if (scientific) {
      std::snprintf(buf, sizeof buf, "%.4e", v);
    } else if (integral_floats) {
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4f", v);
    }
    return buf;
  }
};

void print_rec(std::ostringstream& os, const std::vector<double>& v, const Shape& shape, const Shape& st,
               int64_t base, size_t d, const Format& f, bool summarize, int indent) {
  if (d == shape.size()) {
    std::string s = f.fmt(v[base]);
    os << std::string(size_t(std::max<int>(0, f.width - int(s.size()))), ' ') << s;
    return;
  }
  os << "[";
  const int64_t n = shape[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 6 && i == 3) {
      os << "...";
      i = n - 3;
      os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(size_t(indent + 1 + d), ' '));
    }
    print_rec(os, v, shape, st, base + i * st[d], d + 1, f, summarize, indent);
    if (i + 1 < n) {
      if (d + 1 == shape.size())
        os << ", ";
      else
        os << "," << std::string(shape.size() - d - 1, '\n') << std::string(size_t(indent + 1 + d), ' ');
    }
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> v = to_double_vector();
  Format f;
  f.floating = is_floating(dtype());
  if (f.floating) {
    double max_abs = 0, min_abs = INFINITY;
    bool all_int = true;
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      max_abs = std::max(max_abs, std::fabs(x));
      if (x != 0) min_abs = std::min(min_abs, std::fabs(x));
      all_int = all_int && x == std::floor(x);
    }
    f.integral_floats = all_int && max_abs < 1e8;
    f.scientific = !f.integral_floats && (max_abs >= 1e8 || (min_abs < 1e-4 && max_abs > 0) ||
                                          (min_abs != INFINITY && max_abs / min_abs > 1000));
  }
  for (double x : v) f.width = std::max<int>(f.width, int(f.fmt(x).size()));
  std::ostringstream os;
  os << "tensor(";
  if (dim() == 0)
    os << f.fmt(v.empty() ? 0 : v[0]);
  else
    print_rec(os, v, shape(), contiguous_strides(shape()), 0, 0, f, numel() > 1000, 7);
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype());
  if (requires_grad()) os << (is_leaf() ? ", requires_grad=True" : ", grad_fn=<" + impl()->grad_fn->name + ">");
  os << ")";
  return os.str();
}

}  // namespace rv
