// reduce_minmax.cpp: max / min over all elements, max / min / argmax / argmin along one dim,
// forward and backward.
//
// NaN rule (PyTorch's): a NaN anywhere in a slice makes its max/min NaN, and its index is the
// first NaN's. Otherwise ties keep the first index, because a later element replaces the
// current best only when strictly better. Both rules make the result independent of how the
// work is split between threads.
//
// bf16/f16 inputs are widened to f32 and the result narrowed back: exact, since the result is
// one of the inputs.
//
// On a device, max / min / argmax / argmin along a dim (and the backward of max / min) are the
// backend's minmax_dim kernels, with the same NaN and tie rules.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/reduce_kernel.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

template <class T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return v != v;
  else
    return false;
}

struct Greater {
  template <class T> bool operator()(T a, T b) const { return a > b; }
};
struct Less {
  template <class T> bool operator()(T a, T b) const { return a < b; }
};

// The dtype the kernels read: 16-bit floats widen to f32, everything else stays.
Tensor widen(const Tensor& x) {
  return (x.dtype() == DType::bf16 || x.dtype() == DType::f16) ? x.to(DType::f32) : x;
}

// ---- over all elements ------------------------------------------------------------------------

template <class T, class Better>
T extremum_all_kernel(const T* p, int64_t n, Better better) {
  // Fixed chunks, combined in order: the answer does not depend on the thread count.
  const int64_t chunk = 32768;
  const int64_t nchunks = (n + chunk - 1) / chunk;
  std::unique_ptr<T[]> best(new T[nchunks]);  // not std::vector: T may be bool
  std::vector<int> has_nan(nchunks, 0);
  cpu::parallel_for(nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b = c * chunk, e = std::min(n, b + chunk);
      T m = p[b];
      int nan = 0;
      for (int64_t i = b; i < e; ++i) {  // branch-free so that it vectorises
        const T v = p[i];
        m = better(v, m) ? v : m;
        nan |= is_nan(v);
      }
      best[c] = m;
      has_nan[c] = nan;
    }
  });
  T m = best[0];
  for (int64_t c = 0; c < nchunks; ++c) {
    if (has_nan[c]) return std::numeric_limits<T>::quiet_NaN();
    if (better(best[c], m)) m = best[c];
  }
  return m;
}

template <class Better>
Tensor extremum_all(const Tensor& x, const char* name, Better better) {
  if (x.numel() == 0)
    throw std::invalid_argument(std::string(name) + ": cannot reduce an empty tensor (shape " +
                                shape_str(x.shape()) + ") over all elements; there is no identity. Give a dim");
  Tensor out;
  if (!x.device().is_cpu()) {
    // On a device: the along-one-dim kernel over the flattened tensor gives the value (the same
    // rule: NaN wins); the gradient is this op's own, below (ties share it).
    Tensor indices;
    backend::get(x.device()).minmax_dim(x.detach().reshape({x.numel()}), 0, false, std::is_same_v<Better, Greater>,
                                        true, out, indices);
  } else {
    Tensor xc = widen(x).contiguous();
    out = empty({}, xc.dtype());
    cpu::dispatch_all(xc.dtype(), name, [&]<class T>() {
      *out.data<T>() = extremum_all_kernel<T>(xc.data<T>(), xc.numel(), better);
    });
    if (out.dtype() != x.dtype()) out = out.to(x.dtype());
  }
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor sx = rec.save(x), sv = rec.save(out);
    rec.finish(out, [sx, sv](const Tensor& g, const Needs&) -> Grads {
      // Every element equal to the result (or every NaN, if the result is NaN) gets g / count.
      Tensor hit = std::isnan(sv.item()) ? ne(sx, sx) : eq(sx, sv);
      const double count = sum(hit).item();
      return {where(hit, mul(g, 1.0 / count), full({}, 0.0, g.dtype(), g.device()))};
    });
  }
  return out;
}

// ---- along one dim ----------------------------------------------------------------------------

// values[o] / indices[o] for every output o. `vals` may be null (argmax needs indices only).
template <class T, class Better>
void extremum_dim_kernel(const T* xp, const cpu::ReducePlan& plan, int64_t len, int64_t stride, T* vals,
                         int64_t* idx, Better better) {
  if (plan.out_numel == 0) return;
  const bool tiled = !plan.kept_strides.empty() && plan.kept_strides.back() == 1 && stride != 1;
  if (tiled) {
    // The reduced dim lies outside the contiguous kept row: walk it for a tile of neighbouring
    // outputs at once, so the inner loop runs over contiguous memory and vectorises.
    const int64_t row = plan.kept_shape.back();
    const int64_t tile = 256;
    const int64_t tiles_per_row = (row + tile - 1) / tile;
    const int64_t outer = plan.out_numel / row;
    // grain: enough tiles for ~32K element reads, so small reductions stay on one thread
    const int64_t grain = std::max<int64_t>(1, 32768 / (tile * len));
    cpu::parallel_for(outer * tiles_per_row, grain, [&](int64_t t0, int64_t t1) {
      T best[tile];
      int64_t bi[tile];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = (t / tiles_per_row) * row + (t % tiles_per_row) * tile;
        const int64_t n = std::min(tile, row - (t % tiles_per_row) * tile);
        const T* base = xp + plan.base_offset(o);
        for (int64_t i = 0; i < n; ++i) {
          best[i] = base[i];
          bi[i] = 0;
        }
        for (int64_t j = 1; j < len; ++j) {
          const T* r = base + j * stride;
          for (int64_t i = 0; i < n; ++i) {
            const T v = r[i];
            const bool take = !is_nan(best[i]) && (better(v, best[i]) || is_nan(v));
            best[i] = take ? v : best[i];
            bi[i] = take ? j : bi[i];
          }
        }
        for (int64_t i = 0; i < n; ++i) {
          if (vals) vals[o + i] = best[i];
          idx[o + i] = bi[i];
        }
      }
    });
    return;
  }
  cpu::parallel_for(plan.out_numel, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, len)),
                    [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* base = xp + plan.base_offset(o);
      T best = base[0];
      int64_t bi = 0;
      if (!is_nan(best)) {
        for (int64_t j = 1; j < len; ++j) {
          const T v = base[j * stride];
          if (is_nan(v)) {  // the first NaN wins and nothing can replace it
            best = v;
            bi = j;
            break;
          }
          if (better(v, best)) {
            best = v;
            bi = j;
          }
        }
      }
      if (vals) vals[o] = best;
      idx[o] = bi;
    }
  });
}

// extremum_dim on a device: the backend's kernels for the values / indices and for the backward
// scatter. A 0-d x is reduced as a (1) tensor (its one element, index 0).
ValuesIndices extremum_dim_device(const Tensor& x, int64_t d, bool keepdim, const char* name, bool want_values,
                                  bool is_max) {
  const Tensor xv = x.dim() == 0 ? x.detach().reshape({1}) : x.detach();
  ValuesIndices r;
  backend::get(x.device()).minmax_dim(xv, d, x.dim() == 0 || keepdim, is_max, want_values, r.values, r.indices);
  if (x.dim() == 0) {
    r.indices = r.indices.reshape({});
    if (want_values) r.values = r.values.reshape({});
  }
  if (!want_values) return r;
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor si = rec.save(r.indices);
    Shape in_shape = x.shape();
    rec.finish(r.values, [si, in_shape, d](const Tensor& g, const Needs&) -> Grads {
      if (in_shape.empty()) return {g};  // the one element was chosen
      return {backend::get(g.device()).minmax_dim_backward(g, si, in_shape, d)};
    });
  }
  return r;
}

template <class Better>
ValuesIndices extremum_dim(const Tensor& x, int64_t dim, bool keepdim, const char* name, bool want_values,
                           Better better) {
  const int64_t d = wrap_dim(dim, x.dim(), name);
  const int64_t len = x.dim() == 0 ? 1 : x.shape()[d];
  if (len == 0)
    throw std::invalid_argument(std::string(name) + ": cannot reduce over dim " + std::to_string(dim) +
                                " of size 0 (shape " + shape_str(x.shape()) + "); there is no identity");
  if (!x.device().is_cpu())
    return extremum_dim_device(x, d, keepdim, name, want_values, std::is_same_v<Better, Greater>);
  Tensor xw = widen(x);
  std::vector<bool> mask = cpu::reduced_dims_mask(xw, {dim}, name);
  cpu::ReducePlan plan(xw, mask, keepdim);
  const int64_t stride = x.dim() == 0 ? 0 : xw.strides()[d];
  ValuesIndices r;
  r.indices = empty(plan.out_shape, DType::i64);
  if (want_values) r.values = empty(plan.out_shape, xw.dtype());
  cpu::dispatch_all(xw.dtype(), name, [&]<class T>() {
    extremum_dim_kernel<T>(xw.data<T>(), plan, len, stride, want_values ? r.values.data<T>() : nullptr,
                           r.indices.data<int64_t>(), better);
  });
  if (!want_values) return r;
  if (r.values.dtype() != x.dtype()) r.values = r.values.to(x.dtype());
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor si = rec.save(r.indices);
    Shape in_shape = x.shape();
    rec.finish(r.values, [si, in_shape, mask, keepdim, d](const Tensor& g, const Needs&) -> Grads {
      // Scatter g into zeros at the chosen index of each slice (a plain copy, any dtype).
      Tensor grad = zeros(in_shape, g.dtype(), g.device());
      Tensor gc = g.contiguous(), ic = si.contiguous();
      cpu::ReducePlan gp(grad, mask, keepdim);
      const int64_t st = in_shape.empty() ? 0 : grad.strides()[d];
      const int64_t* ip = ic.data<int64_t>();
      cpu::dispatch_storage(g.dtype(), "max backward", [&]<class T>() {
        T* dst = grad.data<T>();
        const T* src = gc.data<T>();
        cpu::parallel_for(gp.out_numel, 16384, [&](int64_t o0, int64_t o1) {
          for (int64_t o = o0; o < o1; ++o) dst[gp.base_offset(o) + ip[o] * st] = src[o];
        });
      });
      return {grad};
    });
  }
  return r;
}

}  // namespace

Tensor max(const Tensor& x) { return extremum_all(x, "max", Greater{}); }
Tensor min(const Tensor& x) { return extremum_all(x, "min", Less{}); }

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim(x, dim, keepdim, "max", true, Greater{});
}
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim(x, dim, keepdim, "min", true, Less{});
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim(x, dim, keepdim, "argmax", false, Greater{}).indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim(x, dim, keepdim, "argmin", false, Less{}).indices;
}

}  // namespace rv
