// pool.cpp: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d (CPU).
//
// All four are "for each output cell, a rectangle of input cells". The rectangle of output
// cell (oh, ow) is the product of two 1-D spans, one per dim, so each op first builds a span
// table for H and one for W and then runs one shared kernel:
//   max kernels:  first maximum over the span (NaN wins), its flat index saved;
//   avg kernels:  sum over the span, divided by a divisor that depends on the op.
// Work is split over the B*C planes (shape (P, H, W) after flattening), so backward passes,
// which add into the input, never share an element between threads.
// On a device (CUDA) the same span tables go to the backend's pool2d kernels (cuda/kernels/pool.cu).
#include "engine/ops/pool.h"

#include <array>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv {

namespace {

// One output cell's input range along one dim: lo, lo+step, ... < hi.
// `padded` is the window length used by count_include_pad (clipped to the padded input).
struct Span {
  int64_t lo, hi, padded;
};

// The geometry of a pooling call: input planes (P, H, W) and output (P, OH, OW).
struct Planes {
  Shape in_shape, out_shape;
  int64_t P, H, W, OH, OW;
};

Planes plane_shapes(const Tensor& x, const char* op, int64_t OH, int64_t OW) {
  const int64_t nd = x.dim();
  if (nd != 3 && nd != 4)
    throw std::invalid_argument(std::string(op) + ": expected a (B, C, H, W) or (C, H, W) input, got shape " +
                                shape_str(x.shape()));
  for (int64_t d = nd - 3; d < nd; ++d)
    if (x.shape()[d] == 0)
      throw std::invalid_argument(std::string(op) + ": expected non-empty C, H and W (only B may be 0), got shape " +
                                  shape_str(x.shape()));
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected a float tensor, got " + dtype_name(x.dtype()));
  Planes p;
  p.in_shape = x.shape();
  p.H = x.shape()[nd - 2];
  p.W = x.shape()[nd - 1];
  p.P = x.numel() / (p.H * p.W);
  p.OH = OH;
  p.OW = OW;
  p.out_shape = x.shape();
  p.out_shape[nd - 2] = OH;
  p.out_shape[nd - 1] = OW;
  return p;
}

// Expands a 1- or 2-value argument to (H, W); `empty_default` covers an empty list.
std::array<int64_t, 2> pair_arg(const std::vector<int64_t>& v, const char* op, const char* name,
                                std::array<int64_t, 2> empty_default) {
  if (v.empty()) return empty_default;
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw std::invalid_argument(std::string(op) + ": " + name + " takes 1 or 2 values, got " +
                              std::to_string(v.size()));
}

// The sliding-window arguments, checked as PyTorch checks them.
struct Window {
  std::array<int64_t, 2> k, s, p, d;
  bool ceil_mode;
};

Window make_window(const char* op, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                   const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode) {
  if (kernel.empty()) throw std::invalid_argument(std::string(op) + ": kernel needs 1 or 2 values, got none");
  Window w;
  w.k = pair_arg(kernel, op, "kernel", {0, 0});
  w.s = pair_arg(stride, op, "stride", w.k);
  w.p = pair_arg(padding, op, "padding", {0, 0});
  w.d = pair_arg(dilation, op, "dilation", {1, 1});
  w.ceil_mode = ceil_mode;
  for (int i = 0; i < 2; ++i) {
    const std::string dim = i == 0 ? " (H)" : " (W)";
    if (w.k[i] <= 0) throw std::invalid_argument(std::string(op) + ": kernel must be positive, got " + std::to_string(w.k[i]) + dim);
    if (w.s[i] <= 0) throw std::invalid_argument(std::string(op) + ": stride must be positive, got " + std::to_string(w.s[i]) + dim);
    if (w.d[i] <= 0) throw std::invalid_argument(std::string(op) + ": dilation must be positive, got " + std::to_string(w.d[i]) + dim);
    if (w.p[i] < 0 || w.p[i] > w.k[i] / 2)
      throw std::invalid_argument(std::string(op) + ": padding must be between 0 and half the kernel (" +
                                  std::to_string(w.k[i] / 2) + "), got " + std::to_string(w.p[i]) + dim);
  }
  return w;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Planes window_planes(const Tensor& x, const char* op, const Window& w) {
  Planes p = plane_shapes(x, op, 1, 1);
  p.OH = pool_output_size(p.H, w.k[0], w.s[0], w.p[0], w.d[0], w.ceil_mode);
  p.OW = pool_output_size(p.W, w.k[1], w.s[1], w.p[1], w.d[1], w.ceil_mode);
  if (p.OH < 1 || p.OW < 1)
    throw std::invalid_argument(std::string(op) + ": output size " + std::to_string(p.OH) + "x" +
                                std::to_string(p.OW) + " is too small: the kernel (with dilation) is larger than the "
                                "padded input " + std::to_string(p.H + 2 * w.p[0]) + "x" +
                                std::to_string(p.W + 2 * w.p[1]));
  return plane_shapes(x, op, p.OH, p.OW);
}

// Spans of a sliding window (dilated taps start at lo and step by `dil`; lo is moved
// forward past the left padding by whole steps, as PyTorch does).
std::vector<Span> sliding_spans(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad, int64_t dil) {
  std::vector<Span> v(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    int64_t lo = o * s - pad;
    int64_t hi = std::min(lo + (k - 1) * dil + 1, in);
    int64_t padded = std::min(lo + k, in + pad) - lo;  // avg only (dil == 1)
    while (lo < 0) lo += dil;
    v[o] = {lo, hi, padded};
  }
  return v;
}

std::vector<Span> adaptive_spans(int64_t in, int64_t out) {
  std::vector<Span> v(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    int64_t lo = (o * in) / out, hi = ((o + 1) * in + out - 1) / out;
    v[o] = {lo, hi, hi - lo};
  }
  return v;
}

int64_t plane_grain(const Planes& p) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.H * p.W)); }

// ---- max -------------------------------------------------------------------------------

// out[p, oh, ow] = max over the spans; idx = flat h*W+w of the first maximum.
template <class T>
void max_forward(const T* x, T* out, int64_t* idx, const Planes& p, const std::vector<Span>& sh,
                 const std::vector<Span>& sw, int64_t dh, int64_t dw) {
  cpu::parallel_for(p.P, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      const T* xp = x + q * p.H * p.W;
      T* op = out + q * p.OH * p.OW;
      int64_t* ip = idx + q * p.OH * p.OW;
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const Span& a = sh[oh];
          const Span& b = sw[ow];
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_i = a.lo * p.W + b.lo;
          for (int64_t h = a.lo; h < a.hi; h += dh)
            for (int64_t w = b.lo; w < b.hi; w += dw) {
              const T v = xp[h * p.W + w];
              if (v > best || std::isnan(v)) {
                best = v;
                best_i = h * p.W + w;
              }
            }
          op[oh * p.OW + ow] = best;
          ip[oh * p.OW + ow] = best_i;
        }
    }
  });
}

// grad_x[p, idx] += g[p, o]
Tensor max_backward(const Tensor& g_in, const Tensor& idx, const Planes& p) {
  const DType dt = g_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor g = g_in.to(ct).contiguous();
  Tensor gx = zeros(p.in_shape, ct);
  cpu::dispatch_float(ct, "max_pool2d backward", [&]<class T>() {
    const T* gp = g.data<T>();
    const int64_t* ip = idx.data<int64_t>();
    T* xp = gx.data<T>();
    const int64_t n_out = p.OH * p.OW, n_in = p.H * p.W;
    cpu::parallel_for(p.P, plane_grain(p), [&](int64_t p0, int64_t p1) {
      for (int64_t q = p0; q < p1; ++q)
        for (int64_t o = 0; o < n_out; ++o) {
          const int64_t i = ip[q * n_out + o];
          if (i >= 0 && i < n_in) xp[q * n_in + i] += gp[q * n_out + o];
        }
    });
  });
  return ct == dt ? gx : gx.to(dt);
}

using PoolWindows = backend::DeviceBackend::PoolWindows;

// The span tables as the device backend takes them.
PoolWindows device_windows(const Planes& p, const std::vector<Span>& sh, const std::vector<Span>& sw,
                           PoolWindows::Mode mode, int64_t dh, int64_t dw, int64_t divisor) {
  PoolWindows win;
  win.mode = mode;
  win.P = p.P, win.H = p.H, win.W = p.W, win.step_h = dh, win.step_w = dw, win.divisor = divisor;
  for (const Span& a : sh) win.hspan.insert(win.hspan.end(), {a.lo, a.hi, a.padded});
  for (const Span& b : sw) win.wspan.insert(win.wspan.end(), {b.lo, b.hi, b.padded});
  return win;
}

// Pooling of x (on a device) with `win`; records the backward (also on the device).
std::pair<Tensor, Tensor> pool_on_device(const Tensor& x_in, const Planes& p, const PoolWindows& win, const char* op) {
  const bool is_max = win.mode == PoolWindows::Mode::max;
  Tensor idx;
  Tensor out = backend::get(x_in.device())
                   .pool2d(x_in.detach().reshape({p.P, p.H, p.W}), win, is_max ? &idx : nullptr)
                   .view(p.out_shape);
  if (auto rec = autograd::Recorder(op, {x_in})) {
    rec.finish(out, [p, win, idx](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {backend::get(g.device()).pool2d_backward(g.reshape({p.P, p.OH, p.OW}), win, idx).view(p.in_shape)};
    });
  }
  return {out, is_max ? idx.view(p.out_shape) : Tensor()};
}

std::pair<Tensor, Tensor> max_pool_impl(const Tensor& x_in, const Planes& p, const std::vector<Span>& sh,
                                        const std::vector<Span>& sw, int64_t dh, int64_t dw, const char* op) {
  if (!x_in.device().is_cpu())
    return pool_on_device(x_in, p, device_windows(p, sh, sw, PoolWindows::Mode::max, dh, dw, 1), op);
  const DType dt = x_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor x = x_in.to(ct).contiguous();
  Tensor out = empty(p.out_shape, ct), idx = empty(p.out_shape, DType::i64);
  cpu::dispatch_float(ct, op, [&]<class T>() {
    max_forward<T>(x.data<T>(), out.data<T>(), idx.data<int64_t>(), p, sh, sw, dh, dw);
  });
  if (ct != dt) out = out.to(dt);
  if (auto rec = autograd::Recorder(op, {x_in})) {
    rec.finish(out, [p, idx](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {max_backward(g, idx, p)};
    });
  }
  return {out, idx};
}

// ---- average ---------------------------------------------------------------------------

// How an average's divisor is formed from the two spans.
struct AvgRule {
  enum Kind { clipped, padded, fixed, adaptive } kind;
  int64_t fixed_value = 1;
};

template <class T>
T avg_scale_apply(T sum, const Span& a, const Span& b, const AvgRule& r) {
  switch (r.kind) {
    case AvgRule::adaptive: return sum / T(a.hi - a.lo) / T(b.hi - b.lo);  // PyTorch divides twice
    case AvgRule::fixed: return sum / T(r.fixed_value);
    case AvgRule::padded: return sum / T(a.padded * b.padded);
    case AvgRule::clipped: return sum / T((a.hi - a.lo) * (b.hi - b.lo));
  }
  return sum;
}

template <class T>
void avg_forward(const T* x, T* out, const Planes& p, const std::vector<Span>& sh, const std::vector<Span>& sw,
                 const AvgRule& rule) {
  cpu::parallel_for(p.P, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      const T* xp = x + q * p.H * p.W;
      T* op = out + q * p.OH * p.OW;
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const Span& a = sh[oh];
          const Span& b = sw[ow];
          T sum = 0;
          for (int64_t h = a.lo; h < a.hi; ++h)
            for (int64_t w = b.lo; w < b.hi; ++w) sum += xp[h * p.W + w];
          op[oh * p.OW + ow] = avg_scale_apply(sum, a, b, rule);
        }
    }
  });
}

Tensor avg_backward(const Tensor& g_in, const Planes& p, const std::vector<Span>& sh, const std::vector<Span>& sw,
                    const AvgRule& rule) {
  const DType dt = g_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor g = g_in.to(ct).contiguous();
  Tensor gx = zeros(p.in_shape, ct);
  cpu::dispatch_float(ct, "avg_pool2d backward", [&]<class T>() {
    const T* gp = g.data<T>();
    T* xp = gx.data<T>();
    cpu::parallel_for(p.P, plane_grain(p), [&](int64_t p0, int64_t p1) {
      for (int64_t q = p0; q < p1; ++q) {
        T* xq = xp + q * p.H * p.W;
        const T* gq = gp + q * p.OH * p.OW;
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t ow = 0; ow < p.OW; ++ow) {
            const Span& a = sh[oh];
            const Span& b = sw[ow];
            const T share = avg_scale_apply(gq[oh * p.OW + ow], a, b, rule);
            for (int64_t h = a.lo; h < a.hi; ++h)
              for (int64_t w = b.lo; w < b.hi; ++w) xq[h * p.W + w] += share;
          }
      }
    });
  });
  return ct == dt ? gx : gx.to(dt);
}

Tensor avg_pool_impl(const Tensor& x_in, const Planes& p, std::vector<Span> sh, std::vector<Span> sw, AvgRule rule,
                     const char* op) {
  if (!x_in.device().is_cpu()) {
    const PoolWindows::Mode mode = rule.kind == AvgRule::adaptive ? PoolWindows::Mode::avg_adaptive
                                   : rule.kind == AvgRule::fixed  ? PoolWindows::Mode::avg_fixed
                                   : rule.kind == AvgRule::padded ? PoolWindows::Mode::avg_padded
                                                                  : PoolWindows::Mode::avg_clipped;
    return pool_on_device(x_in, p, device_windows(p, sh, sw, mode, 1, 1, rule.fixed_value), op).first;
  }
  const DType dt = x_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor x = x_in.to(ct).contiguous();
  Tensor out = empty(p.out_shape, ct);
  cpu::dispatch_float(ct, op, [&]<class T>() { avg_forward<T>(x.data<T>(), out.data<T>(), p, sh, sw, rule); });
  if (ct != dt) out = out.to(dt);
  if (auto rec = autograd::Recorder(op, {x_in})) {
    rec.finish(out, [p, sh, sw, rule](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {avg_backward(g, p, sh, sw, rule)};
    });
  }
  return out;
}

std::array<int64_t, 2> adaptive_size(const std::vector<int64_t>& output_size, const char* op) {
  auto s = pair_arg(output_size, op, "output_size", {-1, -1});
  if (output_size.empty()) throw std::invalid_argument(std::string(op) + ": output_size needs 1 or 2 values, got none");
  if (s[0] < 0 || s[1] < 0)
    throw std::invalid_argument(std::string(op) + ": output_size must not be negative, got " + std::to_string(s[0]) +
                                "x" + std::to_string(s[1]));
  return s;
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;  // the last window must start inside
  return out;
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const std::vector<int64_t>& kernel,
                                                  const std::vector<int64_t>& stride,
                                                  const std::vector<int64_t>& padding,
                                                  const std::vector<int64_t>& dilation, bool ceil_mode) {
  Window w = make_window("max_pool2d", kernel, stride, padding, dilation, ceil_mode);
  Planes p = window_planes(x, "max_pool2d", w);
  auto sh = sliding_spans(p.H, p.OH, w.k[0], w.s[0], w.p[0], w.d[0]);
  auto sw = sliding_spans(p.W, p.OW, w.k[1], w.s[1], w.p[1], w.d[1]);
  return max_pool_impl(x, p, sh, sw, w.d[0], w.d[1], "max_pool2d");
}

Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  Window w = make_window("avg_pool2d", kernel, stride, padding, {1}, ceil_mode);
  if (divisor_override && *divisor_override == 0)
    throw std::invalid_argument("avg_pool2d: divisor_override must not be zero");
  Planes p = window_planes(x, "avg_pool2d", w);
  AvgRule rule{divisor_override ? AvgRule::fixed : count_include_pad ? AvgRule::padded : AvgRule::clipped,
               divisor_override.value_or(1)};
  return avg_pool_impl(x, p, sliding_spans(p.H, p.OH, w.k[0], w.s[0], w.p[0], 1),
                       sliding_spans(p.W, p.OW, w.k[1], w.s[1], w.p[1], 1), rule, "avg_pool2d");
}

Tensor adaptive_avg_pool2d(const Tensor& x, const std::vector<int64_t>& output_size) {
  auto s = adaptive_size(output_size, "adaptive_avg_pool2d");
  Planes p = plane_shapes(x, "adaptive_avg_pool2d", s[0], s[1]);
  return avg_pool_impl(x, p, adaptive_spans(p.H, p.OH), adaptive_spans(p.W, p.OW), AvgRule{AvgRule::adaptive},
                       "adaptive_avg_pool2d");
}

std::pair<Tensor, Tensor> adaptive_max_pool2d_with_indices(const Tensor& x, const std::vector<int64_t>& output_size) {
  auto s = adaptive_size(output_size, "adaptive_max_pool2d");
  Planes p = plane_shapes(x, "adaptive_max_pool2d", s[0], s[1]);
  return max_pool_impl(x, p, adaptive_spans(p.H, p.OH), adaptive_spans(p.W, p.OW), 1, 1, "adaptive_max_pool2d");
}

Tensor adaptive_max_pool2d(const Tensor& x, const std::vector<int64_t>& output_size) {
  return adaptive_max_pool2d_with_indices(x, output_size).first;
}

}  // namespace rv
