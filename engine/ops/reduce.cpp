// reduce.cpp: sum, mean and sum_to_shape, forward and backward.
//
// Sums of f32 accumulate in f64, so results do not depend on the thread count and stay
// within an ulp or two of a compensated sum (PyTorch uses pairwise f32 sums; the fixtures
// tolerate the difference).
#include "engine/ops/reduce.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/reduce_kernel.h"
#include "engine/ops/elementwise.h"

namespace rv {

namespace cpu {

ReducePlan::ReducePlan(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) {
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduced[d]) {
      red_shape.push_back(x.shape()[d]);
      red_strides.push_back(x.strides()[d]);
      red_numel *= x.shape()[d];
      if (keepdim) out_shape.push_back(1);
    } else {
      kept_shape.push_back(x.shape()[d]);
      kept_strides.push_back(x.strides()[d]);
      out_numel *= x.shape()[d];
      out_shape.push_back(x.shape()[d]);
    }
  }
}

std::vector<bool> reduced_dims_mask(const Tensor& x, const Shape& dims, const char* op) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;
    if (mask[w]) throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(d) + " appears twice");
    mask[w] = true;
  }
  return mask;
}

}  // namespace cpu

namespace {

// Plain summation kernel. Output is contiguous.
template <class T>
void sum_kernel(const Tensor& x, const cpu::ReducePlan& plan, Tensor& out) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const bool outer_reduce = !plan.kept_strides.empty() && plan.kept_strides.back() == 1 &&
                            !plan.red_strides.empty() && plan.red_strides.back() != 1;
  if (outer_reduce) {
    // Reduced dims lie outside the contiguous kept row: add whole rows into a tile of outputs.
    const int64_t row = plan.kept_shape.back();
    const int64_t tile = 256;
    const int64_t tiles_per_row = (row + tile - 1) / tile;
    const int64_t outer = plan.out_numel / (row ? row : 1);
    // Each tile folds red_numel rows of up to `tile` elements; below ~32k adds a thread costs more.
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plan.red_numel * std::min(tile, row)));
    cpu::parallel_for(outer * tiles_per_row, grain, [&](int64_t t0, int64_t t1) {
      std::vector<double> acc(tile);
      for (int64_t t = t0; t < t1; ++t) {
        int64_t o = (t / tiles_per_row) * row + (t % tiles_per_row) * tile;
        int64_t n = std::min(tile, row - (t % tiles_per_row) * tile);
        std::fill(acc.begin(), acc.begin() + n, 0.0);
        const T* base = xp + plan.base_offset(o);
        plan.for_each_reduced([&](int64_t off) {
          const T* p = base + off;
          for (int64_t i = 0; i < n; ++i) acc[i] += double(p[i]);
        });
        for (int64_t i = 0; i < n; ++i) op[o + i] = T(acc[i]);
      }
    });
    return;
  }
  cpu::parallel_for(plan.out_numel, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plan.red_numel)),
                    [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* base = xp + plan.base_offset(o);
      double acc = 0;
      plan.for_each_reduced([&](int64_t off) { acc += double(base[off]); });
      op[o] = T(acc);
    }
  });
}

// Sum without autograd; bf16/f16 compute in f32 and round once at the end.
Tensor sum_values(const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  DType dt = x.dtype();
  Tensor xc = (dt == DType::bf16 || dt == DType::f16) ? x.to(DType::f32) : x;
  if (is_integral(xc.dtype())) xc = xc.to(DType::i64);
  cpu::ReducePlan plan(xc, mask, keepdim);
  Tensor out = empty(plan.out_shape, xc.dtype());
  if (xc.dtype() == DType::i64) {
    const int64_t* xp = xc.data<int64_t>();
    int64_t* op = out.data<int64_t>();
    for (int64_t o = 0; o < plan.out_numel; ++o) {
      int64_t acc = 0;
      const int64_t* base = xp + plan.base_offset(o);
      plan.for_each_reduced([&](int64_t off) { acc += base[off]; });
      op[o] = acc;
    }
    return out;
  }
  cpu::dispatch_float(xc.dtype(), "sum", [&]<class T>() { sum_kernel<T>(xc, plan, out); });
  return xc.dtype() == dt || is_integral(dt) ? out : out.to(dt);
}

// Gradient of a reduction: `g` has the reduced shape; put size-1 dims back and broadcast.
Tensor expand_reduced_grad(const Tensor& g, const Shape& in_shape, const std::vector<bool>& mask, bool keepdim) {
  Tensor gk = g;
  if (!keepdim) {
    Shape s;
    int64_t j = 0;
    for (size_t d = 0; d < in_shape.size(); ++d) s.push_back(mask[d] ? 1 : g.shape()[j++]);
    gk = g.reshape(s);
  }
  return gk.expand(in_shape);
}

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  auto mask = cpu::reduced_dims_mask(x, dims, "sum");
  Tensor out = sum_values(x, mask, keepdim);
  if (auto rec = autograd::Recorder("sum", {x})) {
    Shape in_shape = x.shape();
    rec.finish(out, [in_shape, mask, keepdim](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {expand_reduced_grad(g, in_shape, mask, keepdim).contiguous()};
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string("mean: expected a float tensor, got ") + dtype_name(x.dtype()));
  auto mask = cpu::reduced_dims_mask(x, dims, "mean");
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.shape()[d];
  Tensor out;
  {
    autograd::NoGradGuard ng;
    out = mul(sum_values(x, mask, keepdim), 1.0 / double(count));
  }
  if (auto rec = autograd::Recorder("mean", {x})) {
    Shape in_shape = x.shape();
    rec.finish(out, [in_shape, mask, keepdim, count](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {mul(expand_reduced_grad(g, in_shape, mask, keepdim), 1.0 / double(count))};
    });
  }
  return out;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  if (lead < 0)
    throw std::invalid_argument("sum_to_shape: cannot reduce " + shape_str(g.shape()) + " to " + shape_str(shape));
  Shape dims;
  for (int64_t d = 0; d < g.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && g.shape()[d] != 1) {
      dims.push_back(d);
    } else if (shape[d - lead] != g.shape()[d]) {
      throw std::invalid_argument("sum_to_shape: " + shape_str(g.shape()) + " is not a broadcast of " +
                                  shape_str(shape));
    }
  }
  if (dims.empty()) return g.reshape(shape);
  return sum(g, dims, true).reshape(shape);
}

}  // namespace rv
