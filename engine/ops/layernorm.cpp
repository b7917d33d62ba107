// layernorm.cpp: layer_norm forward and backward on the CPU.
//
// x is seen as R rows of M = prod(normalized_shape) contiguous values (x (B, N, C) with {C}:
// R = B*N rows of C). The forward computes per row, in parallel over rows,
//   mean = sum(x) / M,  rstd = 1 / sqrt(sum((x - mean)^2) / M + eps)   (two passes)
//   y = (x - mean) * rstd * w + b
// and keeps mean and rstd (f32, or f64 for f64 input) for the backward, as llm.c does.
//
// Backward, with xhat = (x - mean) * rstd and gy = g * w:
//   dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat))   (the fused form: one row at a time)
//   dw = sum over rows of g * xhat,  db = sum over rows of g
//
// Row sums. A single running sum `s += x[i]` is a serial chain (the compiler may not reorder
// float adds), one add per ~4 cycles. Instead each row sum is kept in kLanes fixed partial sums
// (lane l takes elements i with i % kLanes == l), which the compiler turns into vector adds,
// and the lanes are folded in a fixed tree at the end. Lanes are in the compute dtype; every
// kBlock elements they are folded and added into a double, so long rows stay accurate. The
// order depends on M only, never on the thread count. A row (a few KiB) stays in L1 between
// the passes, so two passes for the variance (numerically safe) cost little.
//
// dw and db are column sums over all rows. To keep them independent of the thread count,
// rows are cut into a fixed number of chunks (a function of R only); each chunk sums its rows
// into its own f64 partial (through a compute-dtype accumulator flushed every kFlushRows rows,
// so the inner loop is a plain f32 vector add), and the partials are added in chunk order.
#include "engine/ops/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv {

namespace {

constexpr int64_t kLanes = 16;      // partial sums per row sum: one 512-bit f32 vector
constexpr int64_t kBlock = 4096;    // elements per lane fold into the double total
constexpr int64_t kFlushRows = 32;  // rows summed in the compute dtype before adding into f64

// Contiguous copy in the compute dtype `ct` (or t itself); undefined stays undefined.
Tensor dense_or_undefined(const Tensor& t, DType ct) {
  if (!t.defined()) return t;
  return (t.dtype() == ct ? t : t.to(ct)).contiguous();
}

// Folds the lanes pairwise (a fixed tree) into acc[0].
template <class T>
T fold_lanes(T* acc) {
  for (int64_t w = kLanes / 2; w > 0; w /= 2)
    for (int64_t l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// sum over i in [0, m) of term(i), in kLanes lanes per block of kBlock, blocks added in double.
template <class T, class Term>
double row_sum(int64_t m, Term&& term) {
  double total = 0;
  for (int64_t s = 0; s < m; s += kBlock) {
    const int64_t e = std::min(m, s + kBlock);
    T acc[kLanes] = {};
    int64_t i = s;
    for (; i + kLanes <= e; i += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) acc[l] += term(i + l);
    for (int64_t l = 0; i < e; ++i, ++l) acc[l] += term(i);
    total += double(fold_lanes(acc));
  }
  return total;
}

template <class T>
void layer_norm_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t m,
                    double eps) {
  const int64_t ahead = std::max<int64_t>(1, 4096 / int64_t(sizeof(T)) / std::max<int64_t>(1, m));
  cpu::parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, m)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * m;
      T* yr = y + r * m;
      // Ask now for the row `ahead` rows on (about 4 KB ahead): its first pass would otherwise
      // wait on L3 (perf: ~1/4 of the forward stalled on the first load of each row of a
      // (6304, 384) input; the hardware prefetcher does not run far enough ahead).
      if (r + ahead < r1)
        for (int64_t i = 0; i < m; i += 64 / int64_t(sizeof(T))) __builtin_prefetch(xr + ahead * m + i);
      const double mu = row_sum<T>(m, [&](int64_t i) { return xr[i]; }) / double(m);
      const T mu_t = T(mu);
      const double ss = row_sum<T>(m, [&](int64_t i) {
        const T d = xr[i] - mu_t;
        return d * d;
      });
      const T rs_t = T(1.0 / std::sqrt(ss / double(m) + eps));
      mean[r] = mu_t;
      rstd[r] = rs_t;
      // Branch once per row, not per element, so each loop is a plain vectorisable map.
      if (w && b) {
        for (int64_t i = 0; i < m; ++i) yr[i] = (xr[i] - mu_t) * rs_t * w[i] + b[i];
      } else if (w) {
        for (int64_t i = 0; i < m; ++i) yr[i] = (xr[i] - mu_t) * rs_t * w[i];
      } else if (b) {
        for (int64_t i = 0; i < m; ++i) yr[i] = (xr[i] - mu_t) * rs_t + b[i];
      } else {
        for (int64_t i = 0; i < m; ++i) yr[i] = (xr[i] - mu_t) * rs_t;
      }
    }
  });
}

// One row of the backward. Adds g * xhat into aw and g into ab (when kParams), and writes dx
// (when dr is not null). w is never null here (ones when the op has no weight).
template <class T, bool kParams>
void backward_row(const T* __restrict gr, const T* __restrict xr, const T* __restrict w, T mu, T rs,
                  T* __restrict dr, T* __restrict aw, T* __restrict ab, int64_t m) {
  if (!dr) {  // parameter gradients only
    if constexpr (kParams)
      for (int64_t i = 0; i < m; ++i) {
        aw[i] += gr[i] * ((xr[i] - mu) * rs);
        ab[i] += gr[i];
      }
    return;
  }
  // First pass: sum(gy) and sum(gy * xhat) in lanes, and the parameter partials alongside.
  double sg = 0, sgx = 0;
  for (int64_t s = 0; s < m; s += kBlock) {
    const int64_t e = std::min(m, s + kBlock);
    T ag[kLanes] = {}, agx[kLanes] = {};
    auto step = [&](int64_t i, int64_t l) {
      const T xh = (xr[i] - mu) * rs, gy = gr[i] * w[i];
      ag[l] += gy;
      agx[l] += gy * xh;
      if constexpr (kParams) {
        aw[i] += gr[i] * xh;
        ab[i] += gr[i];
      }
    };
    int64_t i = s;
    for (; i + kLanes <= e; i += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) step(i + l, l);
    for (int64_t l = 0; i < e; ++i, ++l) step(i, l);
    sg += double(fold_lanes(ag));
    sgx += double(fold_lanes(agx));
  }
  const T mg = T(sg / double(m)), mgx = T(sgx / double(m));
  // Second pass (the row is still in L1): dx from the recomputed xhat and gy.
  for (int64_t i = 0; i < m; ++i) dr[i] = rs * (gr[i] * w[i] - mg - ((xr[i] - mu) * rs) * mgx);
}

// dx (may be null), dw and db (null when not needed) from g, x, w (may be null), mean, rstd.
template <class T>
void layer_norm_backward_kernel(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                     int64_t rows, int64_t m) {
  // A fixed chunking of the rows: at most 64 chunks of at least 16 rows, from R alone.
  const int64_t nchunks = std::max<int64_t>(1, std::min<int64_t>(64, (rows + 15) / 16));
  const int64_t per = (rows + nchunks - 1) / nchunks;
  const bool want_params = dw || db;
  // Prefetch distance in rows (0: none). Only short rows ask for it: Swin's 384-byte rows gained
  // 10% (12.8-13.3 -> 11.5-11.6 ms, one thread), ViT's 1.5 KB rows lost ~5% with it.
  const int64_t ahead = m * int64_t(sizeof(T)) < 1024 ? 4096 / int64_t(sizeof(T)) / std::max<int64_t>(1, m) : 0;
  std::vector<T> ones(w ? 0 : m, T(1));
  const T* wp = w ? w : ones.data();
  std::vector<double> part_w(want_params ? nchunks * m : 0), part_b(want_params ? nchunks * m : 0);
  // (the chunking fixes the summation order; the grain only decides whether threads are worth it)
  cpu::parallel_for(nchunks, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, per * m)), [&](int64_t c0, int64_t c1) {
    std::vector<T> aw(want_params ? m : 0), ab(want_params ? m : 0);  // compute-dtype accumulators
    for (int64_t c = c0; c < c1; ++c) {
      double* pw = want_params ? part_w.data() + c * m : nullptr;
      double* pb = want_params ? part_b.data() + c * m : nullptr;
      const int64_t end = std::min(rows, (c + 1) * per);
      for (int64_t r0 = c * per; r0 < end; r0 += kFlushRows) {
        const int64_t r1 = std::min(end, r0 + kFlushRows);
        std::fill(aw.begin(), aw.end(), T(0));
        std::fill(ab.begin(), ab.end(), T(0));
        for (int64_t r = r0; r < r1; ++r) {
          if (ahead > 0 && r + ahead < end)  // as in the forward: g's and x's rows ~4 KB ahead
            for (int64_t i = 0; i < m; i += 64 / int64_t(sizeof(T))) {
              __builtin_prefetch(g + (r + ahead) * m + i);
              __builtin_prefetch(x + (r + ahead) * m + i);
            }
          T* dr = dx ? dx + r * m : nullptr;
          if (want_params)
            backward_row<T, true>(g + r * m, x + r * m, wp, mean[r], rstd[r], dr, aw.data(), ab.data(), m);
          else
            backward_row<T, false>(g + r * m, x + r * m, wp, mean[r], rstd[r], dr, nullptr, nullptr, m);
        }
        if (!want_params) continue;
        const bool first = r0 == c * per;  // the first flush of a chunk sets its partial
        for (int64_t i = 0; i < m; ++i) {
          pw[i] = (first ? 0.0 : pw[i]) + double(aw[i]);
          pb[i] = (first ? 0.0 : pb[i]) + double(ab[i]);
        }
      }
      if (want_params && end <= c * per) {  // an empty chunk (rows not a multiple of per)
        std::fill(pw, pw + m, 0.0);
        std::fill(pb, pb + m, 0.0);
      }
    }
  });
  if (!want_params) return;
  // Column sums of the partials, chunk by chunk in order: deterministic.
  cpu::parallel_for(m, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double sw = 0, sb = 0;
      for (int64_t c = 0; c < nchunks; ++c) {
        sw += part_w[c * m + i];
        sb += part_b[c * m + i];
      }
      if (dw) dw[i] = T(sw);
      if (db) db[i] = T(sb);
    }
  });
}

void check_layer_norm_args(const Tensor& x, const Shape& ns, const Tensor& weight, const Tensor& bias) {
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string("layer_norm: expected a float input, got ") + dtype_name(x.dtype()));
  const int64_t k = int64_t(ns.size());
  bool ok = k >= 1 && x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.shape()[x.dim() - k + i] == ns[i];
  if (!ok) {
    std::string want = shape_str(ns);
    throw std::invalid_argument("layer_norm: normalized_shape " + want + " must be non-empty and match the " +
                                "trailing dims of the input, i.e. input shape [*, " + want.substr(1) +
                                ", got input shape " + shape_str(x.shape()));
  }
  for (auto [t, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    if (t->shape() != ns)
      throw std::invalid_argument(std::string("layer_norm: ") + name + " must have shape normalized_shape " +
                                  shape_str(ns) + ", got " + shape_str(t->shape()));
    if (!is_floating(t->dtype()))
      throw std::invalid_argument(std::string("layer_norm: ") + name + " must be a float tensor, got " +
                                  dtype_name(t->dtype()));
  }
}

// The device path (x not on the CPU): x is read as rows of C = prod(normalized_shape) values;
// forward and backward (dx, dweight, dbias as needed) run in the backend's kernels.
Tensor layer_norm_device(const Tensor& x, const Shape& ns, const Tensor& weight, const Tensor& bias, double eps) {
  for (auto [t, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}})
    if (t->defined() && t->device() != x.device())
      throw std::invalid_argument(std::string("layer_norm: ") + name + " is on " + t->device().str() +
                                  ", the input on " + x.device().str() + "; move one with .to(device)");
  const int64_t C = shape_numel(ns);
  Tensor mean, rstd;
  Tensor out = backend::get(x.device()).layer_norm_forward(x, C, weight, bias, eps, mean, rstd);
  if (auto rec = autograd::Recorder("layer_norm", {x, weight, bias})) {
    // weight is read for dx; bias only for its dtype (dbias is made in it), so it is not saved.
    Tensor sx = rec.save(x), sw = weight.defined() ? rec.save(weight) : Tensor();
    Tensor bias_dtype = bias.defined() ? bias.detach() : Tensor();
    rec.finish(out, [sx, sw, bias_dtype, mean, rstd, ns, C](const Tensor& g,
                                                             const autograd::Needs& n) -> autograd::Grads {
      Tensor dx, dw, db;
      backend::get(sx.device()).layer_norm_backward(g, sx, C, sw, bias_dtype, mean, rstd, n[0], n[1], n[2], dx, dw,
                                                    db);
      return {dx, dw.defined() ? dw.view(ns) : dw, db.defined() ? db.view(ns) : db};
    });
  }
  return out;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x), weight_ac = autocast::cast_f32(weight), bias_ac = autocast::cast_f32(bias);
    autocast::DisabledGuard inside;
    return layer_norm(x_ac, normalized_shape, weight_ac, bias_ac, eps);
  }
  check_layer_norm_args(x, normalized_shape, weight, bias);
  if (!x.device().is_cpu()) return layer_norm_device(x, normalized_shape, weight, bias, eps);
  const DType ct = cpu::compute_dtype(x.dtype());
  const int64_t m = shape_numel(normalized_shape);
  const int64_t rows = m == 0 ? 0 : x.numel() / m;
  Tensor xc = dense_or_undefined(x, ct), wc = dense_or_undefined(weight, ct), bc = dense_or_undefined(bias, ct);
  Tensor out = empty(x.shape(), ct), mean = empty({rows}, ct), rstd = empty({rows}, ct);
  cpu::dispatch_float(ct, "layer_norm", [&]<class T>() {
    layer_norm_forward_kernel<T>(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr,
                                 bc.defined() ? bc.data<T>() : nullptr, out.data<T>(), mean.data<T>(), rstd.data<T>(),
                                 rows, m, eps);
  });
  if (out.dtype() != x.dtype()) out = out.to(x.dtype());
  if (auto rec = autograd::Recorder("layer_norm", {x, weight, bias})) {
    // x is saved in its own dtype (bf16 stays bf16), weight only if dx needs it.
    Tensor sx = rec.save(x), sw = rec.needs(0) ? rec.save(weight) : Tensor();
    Shape ns = normalized_shape;
    rec.finish(out, [sx, sw, mean, rstd, ns, rows, m, ct](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      Tensor gc = dense_or_undefined(g, ct), xc2 = dense_or_undefined(sx, ct), wc2 = dense_or_undefined(sw, ct);
      Tensor dx = n[0] ? empty(sx.shape(), ct) : Tensor();
      Tensor dw = n[1] ? empty(ns, ct) : Tensor();
      Tensor db = n[2] ? empty(ns, ct) : Tensor();
      cpu::dispatch_float(ct, "layer_norm backward", [&]<class T>() {
        layer_norm_backward_kernel<T>(gc.data<T>(), xc2.data<T>(), wc2.defined() ? wc2.data<T>() : nullptr,
                                      mean.data<T>(), rstd.data<T>(), dx.defined() ? dx.data<T>() : nullptr,
                                      dw.defined() ? dw.data<T>() : nullptr, db.defined() ? db.data<T>() : nullptr, rows,
                                      m);
      });
      return {dx, dw, db};
    });
  }
  return out;
}

}  // namespace rv
