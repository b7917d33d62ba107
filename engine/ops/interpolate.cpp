// interpolate.cpp: nearest / linear / bilinear / bicubic resizing (with and without
// antialias), forward and backward.
//
// Every mode is separable: output pixel (oh, ow) = sum_i sum_j wh[oh][i] * ww[ow][j] * x[ih_i][iw_j]
// with a short list of (input index, weight) taps per output index and per dim. So each
// call builds one tap table per spatial dim (all the mode-specific arithmetic lives there,
// written in the compute type with PyTorch's exact formulas) and then runs one kernel:
//   forward:  resample the width of every input row into a scratch plane (P, H, OW), then
//             combine whole scratch rows into output rows (vectorisable over OW);
//   backward: the transpose of both steps, in reverse order (height, then width).
// The sums per output pixel run in the same order as PyTorch's (width taps inside, height
// taps outside), so f32 results agree to an ulp or two. Planes (B*C) are split over threads;
// a plane's gradient is accumulated by one thread in a fixed order, so results do not depend
// on the thread count.
#include "engine/ops/interpolate.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/pool.h"

namespace rv {

namespace {

enum class Mode { nearest, linear, cubic, area };

// Taps of one spatial dim: output index o reads n[o] inputs idx[o*K + j] with weights w[o*K + j].
template <class T>
struct Taps {
  int64_t in = 0, out = 0, K = 1;
  std::vector<int64_t> n, idx;
  std::vector<T> w;
  bool identity = false;  // out == in and every output copies its own input: the pass is skipped

  Taps(int64_t in_, int64_t out_, int64_t K_)
      : in(in_), out(out_), K(K_), n(size_t(out_), 0), idx(size_t(out_ * K_), 0), w(size_t(out_ * K_), T(0)) {}
  void add(int64_t o, int64_t i, T weight) {
    idx[o * K + n[o]] = i;
    w[o * K + n[o]] = weight;
    ++n[o];
  }
  void find_identity() {
    // taps may repeat an index (border clamping), so weights are summed per index
    identity = in == out;
    for (int64_t o = 0; o < out && identity; ++o) {
      T own = 0;
      for (int64_t j = 0; j < n[o]; ++j) {
        if (idx[o * K + j] == o) own += w[o * K + j];
        else if (w[o * K + j] != T(0)) identity = false;
      }
      if (own != T(1)) identity = false;
    }
  }
};

// ---- PyTorch's coordinate rules (ATen UpSample.h), in the compute type T -----------------

template <class T>
T area_scale(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return (scale && *scale > 0) ? T(1.0 / *scale) : T(in) / T(out);
}

template <class T>
T source_index(T scale, int64_t dst, bool align_corners, bool cubic) {
  if (align_corners) return scale * T(dst);
  T src = scale * (T(dst) + T(0.5)) - T(0.5);
  return (!cubic && src < T(0)) ? T(0) : src;
}

// floor(src) kept below `in`, and the fractional part clamped to [0, 1].
template <class T>
void split_index(T src, int64_t in, int64_t& i0, T& frac) {
  i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
  frac = std::min(std::max(src - T(i0), T(0)), T(1));
}

// Keys' cubic convolution kernel pieces for |x| <= 1 and 1 < |x| < 2.
template <class T> T cubic1(T x, T A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
template <class T> T cubic2(T x, T A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

template <class T>
Taps<T> nearest_taps(int64_t in, int64_t out, std::optional<double> scale) {
  Taps<T> t(in, out, 1);
  const T s = area_scale<T>(in, out, false, scale);
  for (int64_t o = 0; o < out; ++o) {
    const T src = source_index<T>(s, o, /*align_corners=*/true, false);  // = o * s
    t.add(o, std::min(static_cast<int64_t>(std::floor(src)), in - 1), T(1));
  }
  return t;
}

template <class T>
Taps<T> linear_taps(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  Taps<T> t(in, out, 2);
  const T s = area_scale<T>(in, out, align_corners, scale);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in && !align_corners) {  // PyTorch copies, whatever the scale factor says
      t.add(o, o, T(1));
      continue;
    }
    int64_t i0;
    T frac;
    split_index(source_index<T>(s, o, align_corners, false), in, i0, frac);
    t.add(o, i0, T(1) - frac);
    t.add(o, i0 + (i0 < in - 1 ? 1 : 0), frac);
  }
  return t;
}

template <class T>
Taps<T> cubic_taps(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  Taps<T> t(in, out, 4);
  const T s = area_scale<T>(in, out, align_corners, scale);
  const T A = T(-0.75);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i0;
    T f;
    split_index(source_index<T>(s, o, align_corners, true), in, i0, f);
    const T c[4] = {cubic2<T>(T(f + 1.0), A), cubic1<T>(f, A), cubic1<T>(T(1.0 - f), A), cubic2<T>(T(2.0 - f), A)};
    for (int64_t j = 0; j < 4; ++j) t.add(o, std::clamp<int64_t>(i0 - 1 + j, 0, in - 1), c[j]);
  }
  return t;
}

// Antialiased taps: a filter of half-width `support` (1 for triangle, 2 for cubic) stretched by
// the downscale factor, sampled at the input pixel centres and normalised to sum 1. The mixed
// float/double expressions mirror PyTorch's so that f32 weights round identically.
template <class T>
Taps<T> antialias_taps(int64_t in, int64_t out, bool align_corners, std::optional<double> scale, bool cubic) {
  const int interp = cubic ? 4 : 2;
  const T s = area_scale<T>(in, out, align_corners, scale);
  const T support = (s >= 1.0) ? T((interp * 0.5) * s) : T(interp * 0.5);
  const int64_t max_taps = int64_t(std::ceil(support)) * 2 + 1;
  const T invscale = (s >= 1.0) ? T(1.0 / s) : T(1.0);
  auto filter = [cubic](T x) -> T {
    x = std::abs(x);
    if (!cubic) return x < T(1) ? T(1) - x : T(0);
    const T A = T(-0.5);  // PIL's choice for antialiased bicubic
    if (x < T(1)) return cubic1<T>(x, A);
    if (x < T(2)) return cubic2<T>(x, A);
    return T(0);
  };
  Taps<T> t(in, out, max_taps);
  std::vector<T> wt(static_cast<size_t>(max_taps));
  for (int64_t o = 0; o < out; ++o) {
    const T center = T(s * (double(o) + 0.5));
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    int64_t count = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - lo;
    count = std::clamp<int64_t>(count, 0, max_taps);
    T total = 0;
    for (int64_t j = 0; j < count; ++j) {
      wt[j] = filter(T((double(j + lo) - center + 0.5) * invscale));
      total += wt[j];
    }
    for (int64_t j = 0; j < count; ++j) t.add(o, lo + j, total != T(0) ? wt[j] / total : wt[j]);
  }
  return t;
}

template <class T>
Taps<T> make_taps(Mode mode, bool antialias, int64_t in, int64_t out, bool align_corners,
                  std::optional<double> scale) {
  Taps<T> t = mode == Mode::nearest ? nearest_taps<T>(in, out, scale)
              : antialias           ? antialias_taps<T>(in, out, align_corners, scale, mode == Mode::cubic)
              : mode == Mode::linear ? linear_taps<T>(in, out, align_corners, scale)
                                     : cubic_taps<T>(in, out, align_corners, scale);
  t.find_identity();
  // PyTorch's antialiased path skips a dim whose size does not change; the others do not
  // skip, but their weights are then exactly 1 and 0, so skipping changes no value.
  if (antialias && in == out) t.identity = true;
  return t;
}

// ---- kernels over (P, H, W) planes ---------------------------------------------------------

// One plane: out (OH, OW) from x (H, W); `scratch` holds H*OW values.
template <class T>
void resample_plane(const T* x, T* out, T* scratch, const Taps<T>& th, const Taps<T>& tw) {
  const int64_t H = th.in, W = tw.in, OH = th.out, OW = tw.out;
  // width: row h of x -> row h of the scratch plane (or x itself when width is unchanged)
  const T* rows = x;
  if (!tw.identity) {
    for (int64_t h = 0; h < H; ++h) {
      const T* xr = x + h * W;
      T* sr = scratch + h * OW;
      for (int64_t o = 0; o < OW; ++o) {
        const int64_t* ix = &tw.idx[o * tw.K];
        const T* wx = &tw.w[o * tw.K];
        T acc = xr[ix[0]] * wx[0];
        for (int64_t j = 1; j < tw.n[o]; ++j) acc += xr[ix[j]] * wx[j];
        sr[o] = acc;
      }
    }
    rows = scratch;
  }
  // height: output row = weighted sum of whole rows (a vector loop over OW)
  if (th.identity) {
    std::copy(rows, rows + H * OW, out);
    return;
  }
  for (int64_t o = 0; o < OH; ++o) {
    T* orow = out + o * OW;
    const int64_t* ih = &th.idx[o * th.K];
    const T* wh = &th.w[o * th.K];
    const T* r0 = rows + ih[0] * OW;
    const T w0 = wh[0];
    for (int64_t i = 0; i < OW; ++i) orow[i] = r0[i] * w0;
    for (int64_t j = 1; j < th.n[o]; ++j) {
      const T* rj = rows + ih[j] * OW;
      const T wj = wh[j];
      for (int64_t i = 0; i < OW; ++i) orow[i] += rj[i] * wj;
    }
  }
}

// The transpose of resample_plane: gx (H, W) from g (OH, OW); gx starts at zero.
template <class T>
void resample_plane_backward(const T* g, T* gx, T* scratch, const Taps<T>& th, const Taps<T>& tw) {
  const int64_t H = th.in, W = tw.in, OH = th.out, OW = tw.out;
  // height transpose: g (OH, OW) -> rows (H, OW)
  T* rows = tw.identity ? gx : scratch;
  if (th.identity) {
    std::copy(g, g + H * OW, rows);
  } else {
    std::fill(rows, rows + H * OW, T(0));
    for (int64_t o = 0; o < OH; ++o) {
      const T* grow = g + o * OW;
      for (int64_t j = 0; j < th.n[o]; ++j) {
        T* r = rows + th.idx[o * th.K + j] * OW;
        const T wj = th.w[o * th.K + j];
        for (int64_t i = 0; i < OW; ++i) r[i] += grow[i] * wj;
      }
    }
  }
  if (tw.identity) return;
  // width transpose: rows (H, OW) -> gx (H, W)
  for (int64_t h = 0; h < H; ++h) {
    const T* sr = rows + h * OW;
    T* xr = gx + h * W;
    for (int64_t o = 0; o < OW; ++o)
      for (int64_t j = 0; j < tw.n[o]; ++j) xr[tw.idx[o * tw.K + j]] += sr[o] * tw.w[o * tw.K + j];
  }
}

// Everything a call needs to run forward and backward.
struct Plan {
  Mode mode;
  bool antialias = false, align_corners = false;
  Shape in_shape, out_shape;
  int64_t P = 0, H = 1, W = 1, OH = 1, OW = 1;
  std::optional<double> scale_h, scale_w;
};

template <class T>
void run_forward(const Tensor& x, Tensor& out, const Plan& p) {
  const Taps<T> th = make_taps<T>(p.mode, p.antialias, p.H, p.OH, p.align_corners, p.scale_h);
  const Taps<T> tw = make_taps<T>(p.mode, p.antialias, p.W, p.OW, p.align_corners, p.scale_w);
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const int64_t work = p.H * p.OW + p.OH * p.OW;
  cpu::parallel_for(p.P, std::max<int64_t>(1, 16384 / std::max<int64_t>(work, 1)), [&](int64_t p0, int64_t p1) {
    std::vector<T> scratch(size_t(p.H * p.OW));
    for (int64_t q = p0; q < p1; ++q)
      resample_plane<T>(xp + q * p.H * p.W, op + q * p.OH * p.OW, scratch.data(), th, tw);
  });
}

template <class T>
void run_backward(const Tensor& g, Tensor& gx, const Plan& p) {
  const Taps<T> th = make_taps<T>(p.mode, p.antialias, p.H, p.OH, p.align_corners, p.scale_h);
  const Taps<T> tw = make_taps<T>(p.mode, p.antialias, p.W, p.OW, p.align_corners, p.scale_w);
  const T* gp = g.data<T>();
  T* xp = gx.data<T>();
  const int64_t work = p.H * p.OW + p.OH * p.OW;
  cpu::parallel_for(p.P, std::max<int64_t>(1, 16384 / std::max<int64_t>(work, 1)), [&](int64_t p0, int64_t p1) {
    std::vector<T> scratch(size_t(p.H * p.OW));
    for (int64_t q = p0; q < p1; ++q)
      resample_plane_backward<T>(gp + q * p.OH * p.OW, xp + q * p.H * p.W, scratch.data(), th, tw);
  });
}

// ---- on a device: the same tap tables, the kernels of the backend (cuda/kernels/resample.cu) ----

template <class T>
backend::DeviceBackend::ResampleTaps backend_taps(const Taps<T>& t) {
  backend::DeviceBackend::ResampleTaps r;
  r.in = t.in, r.out = t.out, r.K = t.K;
  r.n = t.n;
  r.idx = t.idx;
  r.w.assign(t.w.begin(), t.w.end());  // exact: every T here is a float or a double
  r.identity = t.identity;
  return r;
}

// The (height, width) tables for a tensor of dtype `dt` on a device, built in that dtype as the
// CPU builds them for its compute type (f32 and f64 only: other dtypes are refused by name).
void device_taps(const Plan& p, DType dt, Device device, backend::DeviceBackend::ResampleTaps& th,
                 backend::DeviceBackend::ResampleTaps& tw) {
  if (dt != DType::f32 && dt != DType::f64)
    throw std::invalid_argument(std::string("interpolate: dtype ") + dtype_name(dt) + " is not implemented on " +
                                device.str() + " yet (f32 and f64 are)");
  auto build = [&]<class T>() {
    th = backend_taps(make_taps<T>(p.mode, p.antialias, p.H, p.OH, p.align_corners, p.scale_h));
    tw = backend_taps(make_taps<T>(p.mode, p.antialias, p.W, p.OW, p.align_corners, p.scale_w));
  };
  if (dt == DType::f64) build.template operator()<double>();
  else build.template operator()<float>();
}

Tensor resample_values_on_device(const Tensor& x, const Plan& p) {
  backend::DeviceBackend::ResampleTaps th, tw;
  device_taps(p, x.dtype(), x.device(), th, tw);
  // The planes (B*C, H, W): a view when x is contiguous, else one device copy.
  const Tensor planes = x.contiguous().reshape({p.P, p.H, p.W});
  return backend::get(x.device()).resample2d(planes, th, tw).reshape(p.out_shape);
}

Tensor resample_grad_on_device(const Tensor& g, const Plan& p) {
  backend::DeviceBackend::ResampleTaps th, tw;
  device_taps(p, g.dtype(), g.device(), th, tw);
  const Tensor planes = g.contiguous().reshape({p.P, p.OH, p.OW});
  return backend::get(g.device()).resample2d_backward(planes, th, tw).reshape(p.in_shape);
}

Tensor resample_values(const Tensor& x_in, const Plan& p) {
  if (!x_in.device().is_cpu()) return resample_values_on_device(x_in, p);
  const DType dt = x_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor x = x_in.to(ct).contiguous();
  Tensor out = empty(p.out_shape, ct);
  if (out.numel() > 0)
    cpu::dispatch_float(ct, "interpolate", [&]<class T>() { run_forward<T>(x, out, p); });
  return ct == dt ? out : out.to(dt);
}

Tensor resample_grad(const Tensor& g_in, const Plan& p) {
  if (!g_in.device().is_cpu()) return resample_grad_on_device(g_in, p);
  const DType dt = g_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor g = g_in.to(ct).contiguous();
  Tensor gx = zeros(p.in_shape, ct);
  if (g.numel() > 0)
    cpu::dispatch_float(ct, "interpolate backward", [&]<class T>() { run_backward<T>(g, gx, p); });
  return ct == dt ? gx : gx.to(dt);
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

Tensor interpolate(const Tensor& x, const InterpolateOptions& opt) {
  const std::string& m = opt.mode;
  Mode mode;
  if (m == "nearest") mode = Mode::nearest;
  else if (m == "linear" || m == "bilinear") mode = Mode::linear;
  else if (m == "bicubic") mode = Mode::cubic;
  else if (m == "area") mode = Mode::area;
  else
    throw std::invalid_argument("interpolate: unknown mode '" + m +
                                "' (expected 'nearest', 'linear', 'bilinear', 'bicubic' or 'area')");
  const int64_t nd = x.dim();
  if (nd != 3 && nd != 4)
    throw std::invalid_argument("interpolate: expected a (B, C, L) or (B, C, H, W) input, got shape " +
                                shape_str(x.shape()));
  const int64_t ns = nd - 2;  // spatial dims
  if ((m == "linear" && nd != 3) || ((m == "bilinear" || m == "bicubic") && nd != 4))
    throw std::invalid_argument("interpolate: mode '" + m + "' needs a " + (m == "linear" ? "3-d (B, C, L)" : "4-d (B, C, H, W)") +
                                " input, got shape " + shape_str(x.shape()));
  if (m == "area" && nd != 4)
    throw std::invalid_argument("interpolate: mode 'area' is implemented for 4-d (B, C, H, W) input, got shape " +
                                shape_str(x.shape()));
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string("interpolate: expected a float tensor, got ") + dtype_name(x.dtype()));
  if (opt.align_corners && (mode == Mode::nearest || mode == Mode::area))
    throw std::invalid_argument("interpolate: align_corners can only be set with 'linear', 'bilinear' or 'bicubic', "
                                "not '" + m + "'");
  if (opt.antialias && !(m == "bilinear" || m == "bicubic"))
    throw std::invalid_argument("interpolate: antialias needs mode 'bilinear' or 'bicubic', got '" + m + "'");
  for (int64_t d = 1; d < nd; ++d)
    if (x.shape()[d] == 0)
      throw std::invalid_argument("interpolate: expected non-empty channel and spatial dims, got shape " +
                                  shape_str(x.shape()));

  // output size and the scale factors PyTorch hands to its kernels
  const bool has_size = !opt.size.empty(), has_scale = !opt.scale_factor.empty();
  if (has_size == has_scale)
    throw std::invalid_argument("interpolate: give exactly one of size and scale_factor");
  if (has_size && opt.recompute_scale_factor)
    throw std::invalid_argument("interpolate: recompute_scale_factor needs scale_factor, not size");
  std::vector<int64_t> out_sp(static_cast<size_t>(ns));
  std::vector<std::optional<double>> scales(static_cast<size_t>(ns));
  if (has_size) {
    if (opt.size.size() != 1 && int64_t(opt.size.size()) != ns)
      throw std::invalid_argument("interpolate: size has " + std::to_string(opt.size.size()) + " values for " +
                                  std::to_string(ns) + " spatial dims");
    for (int64_t i = 0; i < ns; ++i) out_sp[i] = opt.size.size() == 1 ? opt.size[0] : opt.size[i];
  } else {
    if (opt.scale_factor.size() != 1 && int64_t(opt.scale_factor.size()) != ns)
      throw std::invalid_argument("interpolate: scale_factor has " + std::to_string(opt.scale_factor.size()) +
                                  " values for " + std::to_string(ns) + " spatial dims");
    for (int64_t i = 0; i < ns; ++i) {
      const double f = opt.scale_factor.size() == 1 ? opt.scale_factor[0] : opt.scale_factor[i];
      if (!(f > 0) || !std::isfinite(f))
        throw std::invalid_argument("interpolate: scale_factor must be positive and finite, got " + std::to_string(f));
      out_sp[i] = static_cast<int64_t>(std::floor(double(x.shape()[2 + i]) * f));
      if (!opt.recompute_scale_factor && mode != Mode::area) scales[i] = f;
    }
  }
  for (int64_t i = 0; i < ns; ++i)
    if (out_sp[i] <= 0)
      throw std::invalid_argument("interpolate: output size must be positive, got (" + join(out_sp) +
                                  ") for input shape " + shape_str(x.shape()));

  if (mode == Mode::area) return adaptive_avg_pool2d(x, out_sp);

  Plan p;
  p.mode = mode;
  p.antialias = opt.antialias;
  p.align_corners = opt.align_corners.value_or(false);
  p.in_shape = x.shape();
  p.out_shape = x.shape();
  for (int64_t i = 0; i < ns; ++i) p.out_shape[2 + i] = out_sp[i];
  p.W = x.shape()[nd - 1];
  p.OW = out_sp[ns - 1];
  p.scale_w = scales[ns - 1];
  if (ns == 2) {
    p.H = x.shape()[2];
    p.OH = out_sp[0];
    p.scale_h = scales[0];
  }
  p.P = x.shape()[0] * x.shape()[1];

  Tensor out = resample_values(x, p);
  if (auto rec = autograd::Recorder("interpolate", {x})) {
    rec.finish(out, [p](const Tensor& g, const autograd::Needs&) -> autograd::Grads { return {resample_grad(g, p)}; });
  }
  return out;
}

}  // namespace rv
