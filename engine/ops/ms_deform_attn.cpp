// ms_deform_attn.cpp: multi-scale deformable attention, forward and backward on the CPU, the
// argument checks, and the device path (the backend's kernels, forward and backward).
//
// Shapes: value (B, S, NH, HD), locations (B, Q, NH, L, P, 2), weights (B, Q, NH, L, P),
// out and its gradient g (B, Q, NH*HD). The taps of a point are in ms_deform_attn_sample.h.
//
// For one point (b, q, h, l, p) with weight a, taps t (value rows v_t, weights w_t) and g = g[b, q, h, :]:
//   out[b, q, h, :] += a * sum_t w_t v_t
//   d a            = sum_t w_t (g . v_t)
//   d v_t         += a w_t g
//   d loc_x        = a W_l sum_t (d w_t / d ix) (g . v_t),   d loc_y likewise with H_l and iy
// so each point needs the four dot products g . v_t; the backward computes them once and reuses them.
#include "engine/ops/ms_deform_attn.h"

#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dense.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/ms_deform_attn_sample.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

constexpr const char* kOp = "ms_deform_attn";

// The sizes of one call, checked (see check_args).
struct Dims {
  int64_t B = 0, S = 0, NH = 0, HD = 0, Q = 0, L = 0, P = 0;
  std::vector<int64_t> hw;     // (L, 2): H_l, W_l
  std::vector<int64_t> start;  // (L): first token of level l in S
};

void check_float(const Tensor& t, const char* arg) {
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(kOp) + ": expected `" + arg + "` to be a float tensor, got " +
                                dtype_name(t.dtype()));
}

// The int64 metadata as host values (it may live on the device of value, as in PyTorch: a copy of
// a few integers, not of the work).
std::vector<int64_t> host_int64(const Tensor& t, const char* arg) {
  if (t.dtype() != DType::i64)
    throw std::invalid_argument(std::string(kOp) + ": expected `" + arg + "` to be an int64 tensor, got " +
                                dtype_name(t.dtype()));
  return t.device().is_cpu() ? t.contiguous().to_vector<int64_t>() : t.cpu().to_vector<int64_t>();
}

std::string to_str(int64_t v) { return std::to_string(v); }

Dims check_args(const Tensor& value, const Tensor& shapes, const Tensor& starts, const Tensor& loc,
                const Tensor& attn) {
  check_float(value, "value");
  check_float(loc, "sampling_locations");
  check_float(attn, "attention_weights");
  if (value.dim() != 4)
    throw std::invalid_argument(std::string(kOp) + ": expected `value` of shape (B, S, NH, HD), got " +
                                shape_str(value.shape()));
  if (shapes.dim() != 2 || shapes.size(1) != 2)
    throw std::invalid_argument(std::string(kOp) + ": expected `spatial_shapes` of shape (L, 2) holding (H, W), got " +
                                shape_str(shapes.shape()));
  Dims d;
  d.B = value.size(0), d.S = value.size(1), d.NH = value.size(2), d.HD = value.size(3);
  d.L = shapes.size(0);
  d.hw = host_int64(shapes, "spatial_shapes");
  if (starts.dim() != 1 || starts.size(0) != d.L)
    throw std::invalid_argument(std::string(kOp) + ": expected `level_start_index` of shape (" + to_str(d.L) +
                                ") for " + to_str(d.L) + " levels in `spatial_shapes`, got " +
                                shape_str(starts.shape()));
  d.start = host_int64(starts, "level_start_index");
  int64_t total = 0;
  for (int64_t l = 0; l < d.L; ++l) {
    const int64_t H = d.hw[2 * l], W = d.hw[2 * l + 1];
    if (H < 0 || W < 0)
      throw std::invalid_argument(std::string(kOp) + ": expected `spatial_shapes` >= 0, got (" + to_str(H) + ", " +
                                  to_str(W) + ") at level " + to_str(l));
    if (d.start[l] != total)
      throw std::invalid_argument(std::string(kOp) + ": expected `level_start_index`[" + to_str(l) + "] = " +
                                  to_str(total) + " (the sum of H*W of the levels before it), got " +
                                  to_str(d.start[l]));
    total += H * W;
  }
  if (total != d.S)
    throw std::invalid_argument(std::string(kOp) + ": `value` has S = " + to_str(d.S) +
                                " tokens but `spatial_shapes` sums to " + to_str(total) + " (sum of H*W)");
  if (loc.dim() != 6 || loc.size(0) != d.B || loc.size(2) != d.NH || loc.size(3) != d.L || loc.size(5) != 2)
    throw std::invalid_argument(std::string(kOp) + ": expected `sampling_locations` of shape (B, Q, NH, L, P, 2) = (" +
                                to_str(d.B) + ", Q, " + to_str(d.NH) + ", " + to_str(d.L) + ", P, 2), got " +
                                shape_str(loc.shape()));
  d.Q = loc.size(1), d.P = loc.size(4);
  const Shape want_attn = {d.B, d.Q, d.NH, d.L, d.P};
  if (attn.shape() != want_attn)
    throw std::invalid_argument(std::string(kOp) + ": expected `attention_weights` of shape (B, Q, NH, L, P) = " +
                                shape_str(want_attn) + ", got " + shape_str(attn.shape()));
  return d;
}

// out (B, Q, NH*HD): each (b, q) row is written by one task, in a fixed (h, l, p, tap) order.
template <class T>
void forward_kernel(const T* value, const T* loc, const T* attn, T* out, const Dims& d) {
  const int64_t B = d.B, Q = d.Q, NH = d.NH, HD = d.HD, L = d.L, P = d.P, S = d.S;
  const int64_t work = std::max<int64_t>(1, NH * L * P * 4 * std::max<int64_t>(HD, 1));
  cpu::parallel_for(B * Q, std::max<int64_t>(1, 32768 / work), [&](int64_t r0, int64_t r1) {
    msda::Taps<T> taps;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / Q;
      T* __restrict o = out + r * NH * HD;
      std::fill(o, o + NH * HD, T(0));
      for (int64_t h = 0; h < NH; ++h) {
        T* __restrict oh = o + h * HD;
        const int64_t pt0 = (r * NH + h) * L * P;  // first point of (b, q, h)
        for (int64_t l = 0; l < L; ++l) {
          const int64_t H = d.hw[2 * l], W = d.hw[2 * l + 1];
          // Row (b, start_l + i, h) of value.
          const T* vl = value + ((b * S + d.start[l]) * NH + h) * HD;
          for (int64_t p = 0; p < P; ++p) {
            const int64_t pt = pt0 + l * P + p;
            if (!msda::bilinear_taps(loc[2 * pt], loc[2 * pt + 1], H, W, taps)) continue;
            const T a = attn[pt];
            for (int k = 0; k < 4; ++k) {
              if (taps.index[k] < 0) continue;
              const T aw = a * taps.weight[k];
              const T* __restrict v = vl + taps.index[k] * NH * HD;
              for (int64_t c = 0; c < HD; ++c) oh[c] += aw * v[c];
            }
          }
        }
      }
    }
  });
}

// a . b over n elements in 8 interleaved partial sums, added in a fixed order at the end: the
// compiler vectorises the 8 independent chains (a plain `sum += a[c] * b[c]` loop must stay scalar
// to keep its order), and the result depends only on n, not on the thread count.
template <class T>
inline T dot_product(const T* __restrict a, const T* __restrict b, int64_t n) {
  T part[8] = {};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) part[k] += a[c + k] * b[c + k];
  T sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

// The three gradients from g (B, Q, NH*HD), any of them null when not needed. One task per (b, h):
// it walks the queries in order and is the only writer of value-gradient rows (b, :, h, :) and of
// the location / weight gradients of its points, so the sums do not depend on the thread count.
template <class T>
void backward_kernel(const T* g, const T* value, const T* loc, const T* attn, T* dvalue, T* dloc, T* dattn,
                     const Dims& d) {
  const int64_t Q = d.Q, NH = d.NH, HD = d.HD, L = d.L, P = d.P, S = d.S;
  cpu::parallel_for(d.B * NH, 1, [&](int64_t t0, int64_t t1) {
    msda::Taps<T> taps;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / NH, h = t % NH;
      for (int64_t q = 0; q < Q; ++q) {
        const T* __restrict gr = g + ((b * Q + q) * NH + h) * HD;
        const int64_t pt0 = ((b * Q + q) * NH + h) * L * P;
        for (int64_t l = 0; l < L; ++l) {
          const int64_t H = d.hw[2 * l], W = d.hw[2 * l + 1];
          const int64_t row0 = (b * S + d.start[l]) * NH + h;  // row (b, start_l, h) of value
          for (int64_t p = 0; p < P; ++p) {
            const int64_t pt = pt0 + l * P + p;
            if (!msda::bilinear_taps(loc[2 * pt], loc[2 * pt + 1], H, W, taps)) {
              if (dattn) dattn[pt] = T(0);
              if (dloc) dloc[2 * pt] = dloc[2 * pt + 1] = T(0);
              continue;
            }
            const T a = attn[pt];
            T da = 0, dix = 0, diy = 0;
            for (int k = 0; k < 4; ++k) {
              if (taps.index[k] < 0) continue;
              const int64_t off = (row0 + taps.index[k] * NH) * HD;
              if (dattn || dloc) {
                const T dot = dot_product(gr, value + off, HD);  // g . v_t
                da += taps.weight[k] * dot;
                dix += taps.dwx[k] * dot;
                diy += taps.dwy[k] * dot;
              }
              if (dvalue) {
                const T aw = a * taps.weight[k];
                T* __restrict dv = dvalue + off;
                for (int64_t c = 0; c < HD; ++c) dv[c] += aw * gr[c];
              }
            }
            if (dattn) dattn[pt] = da;
            if (dloc) {
              dloc[2 * pt] = a * dix * T(W);
              dloc[2 * pt + 1] = a * diy * T(H);
            }
          }
        }
      }
    }
  });
}

void check_same_device(const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(kOp) + ": `" + an + "` is on " + a.device().str() + " but `" + bn +
                                "` is on " + b.device().str() + "; move one with .to(device)");
}

// The device path: the backend's forward, and its backward from the recorded closure (on the device too).
Tensor ms_deform_attn_device(const Tensor& value, const Tensor& loc, const Tensor& attn, const Dims& d) {
  backend::DeviceBackend& be = backend::get(value.device());
  Tensor out = be.ms_deform_attn(value.detach(), d.hw, d.start, loc.detach(), attn.detach());
  if (auto rec = autograd::Recorder(kOp, {value, loc, attn})) {
    Tensor sv = rec.save(value), sl = rec.save(loc), sa = rec.save(attn);
    std::vector<int64_t> hw = d.hw, start = d.start;
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor dv, dl, da;
      backend::get(g.device()).ms_deform_attn_backward(g, sv, hw, start, sl, sa, need[0] ? &dv : nullptr,
                                                       need[1] ? &dl : nullptr, need[2] ? &da : nullptr);
      return {dv, dl, da};
    });
  }
  return out;
}

}  // namespace

Tensor ms_deform_attn(const Tensor& value, const Tensor& spatial_shapes, const Tensor& level_start_index,
                      const Tensor& sampling_locations, const Tensor& attention_weights) {
  const Dims d = check_args(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  if (!value.device().is_cpu() || !sampling_locations.device().is_cpu() || !attention_weights.device().is_cpu()) {
    check_same_device(value, sampling_locations, "value", "sampling_locations");
    check_same_device(value, attention_weights, "value", "attention_weights");
    if (!spatial_shapes.device().is_cpu()) check_same_device(value, spatial_shapes, "value", "spatial_shapes");
    if (!level_start_index.device().is_cpu())
      check_same_device(value, level_start_index, "value", "level_start_index");
    return ms_deform_attn_device(value, sampling_locations, attention_weights, d);
  }
  const DType out_dt = promote_types(promote_types(value.dtype(), sampling_locations.dtype()), attention_weights.dtype());
  const DType ct = cpu::compute_dtype(out_dt);
  Tensor v = cpu::dense(value, ct), loc = cpu::dense(sampling_locations, ct), attn = cpu::dense(attention_weights, ct);
  Tensor out = empty({d.B, d.Q, d.NH * d.HD}, ct);
  cpu::dispatch_float(ct, kOp, [&]<class T>() {
    forward_kernel<T>(v.data<T>(), loc.data<T>(), attn.data<T>(), out.data<T>(), d);
  });
  if (out_dt != ct) out = out.to(out_dt);

  if (auto rec = autograd::Recorder(kOp, {value, sampling_locations, attention_weights})) {
    // Every gradient reads the locations; the value and weight gradients need the weights, and the
    // location and weight gradients need the values.
    Tensor sv = rec.needs(1) || rec.needs(2) ? rec.save(v) : Tensor();
    Tensor sl = rec.save(loc), sa = rec.save(attn);
    const DType vdt = value.dtype(), ldt = sampling_locations.dtype(), adt = attention_weights.dtype();
    rec.finish(out, [=](const Tensor& g_in, const Needs& need) -> Grads {
      Tensor g = cpu::dense(g_in, ct);
      Tensor dv = need[0] ? zeros({d.B, d.S, d.NH, d.HD}, ct) : Tensor();
      Tensor dl = need[1] ? empty(sl.shape(), ct) : Tensor();
      Tensor da = need[2] ? empty(sa.shape(), ct) : Tensor();
      cpu::dispatch_float(ct, "ms_deform_attn backward", [&]<class T>() {
        backward_kernel<T>(g.data<T>(), sv.defined() ? sv.data<T>() : nullptr, sl.data<T>(), sa.data<T>(),
                           dv.defined() ? dv.data<T>() : nullptr, dl.defined() ? dl.data<T>() : nullptr,
                           da.defined() ? da.data<T>() : nullptr, d);
      });
      return {dv.defined() && vdt != ct ? dv.to(vdt) : dv, dl.defined() && ldt != ct ? dl.to(ldt) : dl,
              da.defined() && adt != ct ? da.to(adt) : da};
    });
  }
  return out;
}

Tensor ms_deform_attn_spatial_shapes(const std::vector<std::pair<int64_t, int64_t>>& levels) {
  std::vector<int64_t> v;
  for (const auto& [h, w] : levels) v.insert(v.end(), {h, w});
  return from_vector(v, {int64_t(levels.size()), 2});
}

Tensor ms_deform_attn_level_start(const std::vector<std::pair<int64_t, int64_t>>& levels) {
  std::vector<int64_t> v;
  int64_t s = 0;
  for (const auto& [h, w] : levels) {
    v.push_back(s);
    s += h * w;
  }
  return from_vector(v, {int64_t(levels.size())});
}

}  // namespace rv
