// softmax.cpp: softmax and log_softmax along any dim, forward and backward.
//
// The input is viewed as a contiguous (outer, len, inner) block with the softmax dim in the
// middle. inner == 1 (the softmax dim is last, the common case for attention scores) is the
// fast path: one row of `len` contiguous values per task. Otherwise a task takes a tile of up
// to 256 neighbouring inner columns and walks the dim for all of them at once, so every inner
// loop is unit-stride. Non-contiguous inputs are made contiguous first.
//
// Numerics: subtract the slice max before exp (no overflow). The fast path sums each row in
// kLanes fixed partial sums of the compute type (f32 for f32/bf16: rows are at most a few
// thousand terms, each in [0, 1]) combined in a fixed order, so the loops vectorise and the result
// does not depend on the thread count; the strided path sums each column serially and keeps f64.
// exp is vm::exp_ftz (vec_math.h): vectorisable in f32 (its arguments, x - max and the log-
// probabilities, are <= 0; a term below 1.2e-38 becomes 0 instead of a subnormal, which a row
// sum >= 1 cannot see), libm in f64.
// Non-finite inputs follow PyTorch: a slice of all -inf gives NaN (-inf - -inf), +inf or NaN
// anywhere gives a NaN slice, and -inf next to finite values gives exactly 0 (log: -inf).
//
// On a CUDA device the op calls the backend's kernels (softmax_device below; cuda/kernels/softmax.cu).
//
// Backward uses the saved output y only:
//   softmax:      dx = y * (g - sum(g * y))
//   log_softmax:  dx = g - exp(y) * sum(g)
// 512-bit vectors where AVX-512 is on (GCC's tuning for this CPU family prefers 256): the row
// loops are exp-bound, as in activation.cpp.
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif
#include "engine/ops/softmax.h"

#include <algorithm>
#include <cmath>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"
#include "engine/cpu/row_max.h"
#include "engine/cpu/vec_math.h"

namespace rv {

namespace {

// A contiguous tensor seen as (outer, len, inner) around the softmax dim.
struct Layout {
  int64_t outer = 1, len = 1, inner = 1;
};

Layout layout_of(const Shape& shape, int64_t d) {
  Layout l;
  if (shape.empty()) return l;  // a 0-d tensor is one slice of length 1
  for (int64_t i = 0; i < d; ++i) l.outer *= shape[i];
  l.len = shape[d];
  for (size_t i = d + 1; i < shape.size(); ++i) l.inner *= shape[i];
  return l;
}

constexpr int64_t kTile = 256;
constexpr int kLanes = 16;  // partial maxima / sums per row in the fast path (one AVX-512 vector of f32)

// Calls row(offset) for each slice when inner == 1 (one contiguous row of len values), else
// tile(offset, n) for each group of n <= kTile neighbouring inner columns. Each call owns its
// outputs, so threads never share a write and the result does not depend on their number.
template <class Row, class Tile>
void for_each_slice_group(const Layout& l, Row&& row, Tile&& tile) {
  if (l.inner == 1) {
    cpu::parallel_for(l.outer, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, l.len)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) row(r * l.len);
    });
    return;
  }
  const int64_t tiles = (l.inner + kTile - 1) / kTile;
  const int64_t grain = std::max<int64_t>(1, 16384 / (kTile * std::max<int64_t>(1, l.len)));
  cpu::parallel_for(l.outer * tiles, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / tiles, c0 = (t % tiles) * kTile;
      tile(o * l.len * l.inner + c0, std::min(kTile, l.inner - c0));
    }
  });
}

template <class T, bool kLog>
void forward_kernel(const T* x, T* y, const Layout& l) {
  const int64_t len = l.len, st = l.inner;  // st: distance between neighbours along the dim
  auto row = [&](int64_t base) {
    const T* xr = x + base;
    T* yr = y + base;
    // The max: vectorised lanes in a fixed order (cpu/row_max.h). The sum below likewise uses
    // kLanes independent partials: a single running sum is a serial dependency chain that the
    // compiler may not reorder (it would change float results); fixed lanes combined in a fixed
    // order vectorise and stay deterministic.
    const T mx = cpu::row_max(xr, len);
    int64_t j = 0;
    // exp into y (for log_softmax y is scratch, overwritten below), then sum it in lanes. Two
    // loops rather than one: the plain exp loop vectorises cleanly, the lane loop is a few adds
    // per vector, and the row is still in L1 when it is read back.
    for (j = 0; j < len; ++j) yr[j] = cpu::vm::exp_ftz(xr[j] - mx);
    T sl[kLanes] = {};
    for (j = 0; j + kLanes <= len; j += kLanes)
      for (int l = 0; l < kLanes; ++l) sl[l] += yr[j + l];
    for (; j < len; ++j) sl[0] += yr[j];
    T sum = 0;
    for (int l = 0; l < kLanes; ++l) sum += sl[l];
    if constexpr (kLog) {
      const T lse = cpu::vm::log(sum);
      for (int64_t j = 0; j < len; ++j) yr[j] = (xr[j] - mx) - lse;
    } else {
      const T inv = T(1) / sum;
      for (int64_t j = 0; j < len; ++j) yr[j] *= inv;
    }
  };
  auto tile = [&](int64_t base, int64_t n) {
    const T* xb = x + base;
    T* yb = y + base;
    T mx[kTile], post[kTile];
    double sum[kTile];
    for (int64_t i = 0; i < n; ++i) {
      mx[i] = xb[i];
      sum[i] = 0.0;
    }
    for (int64_t j = 1; j < len; ++j)
      for (int64_t i = 0; i < n; ++i) mx[i] = xb[j * st + i] > mx[i] ? xb[j * st + i] : mx[i];
    for (int64_t j = 0; j < len; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const T e = cpu::vm::exp_ftz(xb[j * st + i] - mx[i]);
        if constexpr (!kLog) yb[j * st + i] = e;
        sum[i] += double(e);
      }
    for (int64_t i = 0; i < n; ++i) post[i] = kLog ? T(std::log(sum[i])) : T(1.0 / sum[i]);
    for (int64_t j = 0; j < len; ++j)
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (kLog)
          yb[j * st + i] = (xb[j * st + i] - mx[i]) - post[i];
        else
          yb[j * st + i] *= post[i];
      }
  };
  for_each_slice_group(l, row, tile);
}

template <class T, bool kLog>
void backward_kernel(const T* g, const T* y, T* dx, const Layout& l) {
  const int64_t len = l.len, st = l.inner;
  auto row = [&](int64_t base) {
    const T* gr = g + base;
    const T* yr = y + base;
    T* dr = dx + base;
    T al[kLanes] = {};  // fixed partial sums, as in the forward
    int64_t j = 0;
    for (; j + kLanes <= len; j += kLanes)
      for (int l = 0; l < kLanes; ++l) al[l] += kLog ? gr[j + l] : gr[j + l] * yr[j + l];
    for (; j < len; ++j) al[0] += kLog ? gr[j] : gr[j] * yr[j];
    T a = 0;  // sum(g) for log_softmax, sum(g * y) for softmax
    for (int l = 0; l < kLanes; ++l) a += al[l];
    for (int64_t j = 0; j < len; ++j) {
      if constexpr (kLog)
        dr[j] = gr[j] - cpu::vm::exp_ftz(yr[j]) * a;
      else
        dr[j] = yr[j] * (gr[j] - a);
    }
  };
  auto tile = [&](int64_t base, int64_t n) {
    const T* gb = g + base;
    const T* yb = y + base;
    T* db = dx + base;
    double acc[kTile];
    T a[kTile];
    for (int64_t i = 0; i < n; ++i) acc[i] = 0.0;
    for (int64_t j = 0; j < len; ++j)
      for (int64_t i = 0; i < n; ++i)
        acc[i] += kLog ? double(gb[j * st + i]) : double(gb[j * st + i]) * double(yb[j * st + i]);
    for (int64_t i = 0; i < n; ++i) a[i] = T(acc[i]);
    for (int64_t j = 0; j < len; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = j * st + i;
        if constexpr (kLog)
          db[k] = gb[k] - cpu::vm::exp_ftz(yb[k]) * a[i];
        else
          db[k] = yb[k] * (gb[k] - a[i]);
      }
  };
  for_each_slice_group(l, row, tile);
}

// A contiguous copy in the dtype the kernels compute in (bf16/f16 -> f32), or t itself.
Tensor as_compute(const Tensor& t) {
  const DType ct = cpu::compute_dtype(t.dtype());
  return (t.dtype() == ct ? t : t.to(ct)).contiguous();
}

// On a device (x not on the CPU): the backend's kernels work over the last dim of a contiguous
// tensor, so another dim d is first swapped with the last one (transpose + contiguous, ops that
// run on the device and record their own backward), and the result swapped back (contiguous, as
// the CPU's). The node recorded here covers only the last-dim kernel; its backward runs the
// backend's fused backward kernel, on the same device.
template <bool kLog>
Tensor softmax_device(const Tensor& x, int64_t d, const char* name) {
  if (x.dim() == 0) return softmax_device<kLog>(x.reshape({1}), 0, name).reshape({});
  const int64_t last = x.dim() - 1;
  if (d != last)
    return softmax_device<kLog>(x.transpose(d, last).contiguous(), last, name).transpose(d, last).contiguous();
  const Tensor xc = x.contiguous();
  Tensor out = backend::get(xc.device()).softmax_last_dim(xc, kLog);
  if (auto rec = autograd::Recorder(name, {xc})) {
    Tensor sy = rec.save(out);
    rec.finish(out, [sy](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {backend::get(sy.device()).softmax_last_dim_backward(g.contiguous(), sy, kLog)};
    });
  }
  return out;
}

template <bool kLog>
Tensor softmax_impl(const Tensor& x, int64_t dim, const char* name) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x);
    autocast::DisabledGuard inside;
    return softmax_impl<kLog>(x_ac, dim, name);
  }
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string(name) + ": expected a float tensor, got " + dtype_name(x.dtype()));
  const int64_t d = wrap_dim(dim, x.dim(), name);
  if (!x.device().is_cpu()) return softmax_device<kLog>(x, d, name);
  const Layout l = layout_of(x.shape(), d);
  Tensor xc = as_compute(x);
  Tensor out = empty(x.shape(), xc.dtype());
  if (x.numel() > 0)
    cpu::dispatch_float(xc.dtype(), name, [&]<class T>() { forward_kernel<T, kLog>(xc.data<T>(), out.data<T>(), l); });
  if (out.dtype() != x.dtype()) out = out.to(x.dtype());
  if (auto rec = autograd::Recorder(name, {x})) {
    Tensor sy = rec.save(out);
    rec.finish(out, [sy, l, name](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      Tensor gc = as_compute(g), yc = as_compute(sy);
      Tensor dx = empty(sy.shape(), gc.dtype());
      if (dx.numel() > 0)
        cpu::dispatch_float(gc.dtype(), name, [&]<class T>() {
          backward_kernel<T, kLog>(gc.data<T>(), yc.data<T>(), dx.data<T>(), l);
        });
      return {dx};
    });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl<false>(x, dim, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl<true>(x, dim, "log_softmax"); }

}  // namespace rv
