// reduce.cpp: sum, mean and sum_to_shape, forward and backward.
//
// Sums of f32 accumulate in f64, in an order fixed by the shape (lanes and row chunks, see
// sum_kernel), so results do not depend on the thread count and stay within an ulp or two of
// a compensated sum (PyTorch uses pairwise f32 sums; the fixtures tolerate the difference).
#include "engine/ops/reduce.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
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

// Calls f(offset) for the reduced elements k in [k0, k1) (row-major over the reduced dims), the
// offset being relative to an output's base: for_each_reduced restricted to a range.
template <class F>
void for_reduced_range(const cpu::ReducePlan& plan, int64_t k0, int64_t k1, F&& f) {
  const int64_t nd = int64_t(plan.red_shape.size());
  if (k0 >= k1) return;  // (also keeps an empty reduced dim out of the divisions below)
  if (nd == 0) {
    f(int64_t(0));
    return;
  }
  std::vector<int64_t> idx(nd);
  int64_t off = 0;
  for (int64_t d = nd - 1, k = k0; d >= 0; --d) {
    idx[d] = k % plan.red_shape[d];
    k /= plan.red_shape[d];
    off += idx[d] * plan.red_strides[d];
  }
  for (int64_t k = k0; k < k1; ++k) {
    f(off);
    for (int64_t d = nd - 1; d >= 0; --d) {  // odometer
      off += plan.red_strides[d];
      if (++idx[d] < plan.red_shape[d]) break;
      off -= plan.red_strides[d] * plan.red_shape[d];
      idx[d] = 0;
    }
  }
}

constexpr int64_t kTile = 256;        // outputs per task when summing whole rows (the outer path)
constexpr int64_t kChunkRows = 128;   // the fewest rows worth a partial sum of their own
constexpr int64_t kMaxChunks = 64;
constexpr int64_t kSumLanes = 8;      // f64 partial sums per output in the inner path

// Summation kernel, f64 accumulators (see the file comment). Output is contiguous.
//
// Outer path (the reduced dims lie outside a contiguous kept row, e.g. a bias gradient: the
// column sums of a (rows, C) gradient): tasks add whole rows into a tile of up to kTile f64
// accumulators, a vector add per row. The reduced rows are cut into a fixed number of chunks (a
// function of the shape only), each summed into its own partial; the partials are added in
// chunk order. So a (100352, 96) sum runs on every thread, and the result does not depend on
// how many there are.
//
// Inner path (the reduced elements of an output are contiguous runs, e.g. sum over the last
// dim): each output sums its runs in kSumLanes fixed lanes (a vector add instead of a serial
// chain of dependent adds), folded in a fixed order.
template <class T>
void sum_kernel(const Tensor& x, const cpu::ReducePlan& plan, Tensor& out) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const bool outer_reduce = !plan.kept_strides.empty() && plan.kept_strides.back() == 1 &&
                            !plan.red_strides.empty() && plan.red_strides.back() != 1;
  if (outer_reduce) {
    const int64_t row = plan.kept_shape.back();
    const int64_t tiles_per_row = (row + kTile - 1) / kTile;
    const int64_t outer = plan.out_numel / (row ? row : 1);
    const int64_t rows = plan.red_numel;
    // Chunks of the reduced rows, from the shape alone; partials capped at 16 MiB of f64.
    const int64_t nchunks = std::max<int64_t>(
        1, std::min({kMaxChunks, rows / kChunkRows, (int64_t(1) << 21) / std::max<int64_t>(1, plan.out_numel)}));
    const int64_t per = (rows + nchunks - 1) / std::max<int64_t>(1, nchunks);
    std::vector<double> part(nchunks > 1 ? size_t(nchunks * plan.out_numel) : 0);
    // Each task folds per rows of up to kTile values; below ~32k adds a thread costs more.
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per * std::min(kTile, row)));
    cpu::parallel_for(nchunks * outer * tiles_per_row, grain, [&](int64_t t0, int64_t t1) {
      double acc[kTile];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t c = t / (outer * tiles_per_row), tt = t % (outer * tiles_per_row);
        const int64_t o = (tt / tiles_per_row) * row + (tt % tiles_per_row) * kTile;
        const int64_t n = std::min(kTile, row - (tt % tiles_per_row) * kTile);
        std::fill(acc, acc + n, 0.0);
        const T* base = xp + plan.base_offset(o);
        for_reduced_range(plan, c * per, std::min(rows, (c + 1) * per), [&](int64_t off) {
          const T* p = base + off;
          for (int64_t i = 0; i < n; ++i) acc[i] += double(p[i]);
        });
        if (nchunks == 1) {
          for (int64_t i = 0; i < n; ++i) op[o + i] = T(acc[i]);
        } else {
          std::copy(acc, acc + n, part.data() + c * plan.out_numel + o);
        }
      }
    });
    if (nchunks == 1) return;
    cpu::parallel_for(plan.out_numel, 4096, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double s = 0;
        for (int64_t c = 0; c < nchunks; ++c) s += part[c * plan.out_numel + o];
        op[o] = T(s);
      }
    });
    return;
  }
  const int64_t nd = int64_t(plan.red_shape.size());
  const bool runs = nd > 0 && plan.red_strides.back() == 1 && plan.red_shape.back() >= 2 * kSumLanes;
  if (runs) {
    // Contiguous runs of `len`: the outer reduced dims are walked as a reduction of their own.
    const int64_t len = plan.red_shape.back(), nruns = plan.red_numel / len;
    cpu::ReducePlan outer_plan = plan;
    outer_plan.red_shape.pop_back();
    outer_plan.red_strides.pop_back();
    cpu::parallel_for(plan.out_numel, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plan.red_numel)),
                      [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const T* base = xp + plan.base_offset(o);
        double acc[kSumLanes] = {};
        for_reduced_range(outer_plan, 0, nruns, [&](int64_t off) {
          const T* p = base + off;
          int64_t i = 0;
          for (; i + kSumLanes <= len; i += kSumLanes)
            for (int64_t l = 0; l < kSumLanes; ++l) acc[l] += double(p[i + l]);
          for (int64_t l = 0; i < len; ++i, ++l) acc[l] += double(p[i]);
        });
        for (int64_t w = kSumLanes / 2; w > 0; w /= 2)
          for (int64_t l = 0; l < w; ++l) acc[l] += acc[l + w];
        op[o] = T(acc[0]);
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
  if (!x.device().is_cpu()) {
    // On a device: all elements of f32 / f64 through the two-stage sum_all kernel; a subset of
    // dims (and bf16) through sum_dims.
    bool all = true;
    for (bool m : mask) all = all && m;
    if (all && (x.dtype() == DType::f32 || x.dtype() == DType::f64)) {
      Tensor out = backend::get(x.device()).sum_all(x);
      return keepdim ? out.reshape(Shape(size_t(x.dim()), 1)) : out;
    }
    return backend::get(x.device()).sum_dims(x, mask, keepdim);
  }
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
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return sum(x_ac, dims, keepdim);
  }
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
