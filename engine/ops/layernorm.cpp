// layernorm.cpp: layer_norm forward and backward on the CPU.
//
// x is seen as R rows of M = prod(normalized_shape) contiguous values (x (B, N, C) with {C}:
// R = B*N rows of C). The forward computes per row, in parallel over rows,
//   mean = sum(x) / M,  rstd = 1 / sqrt(sum((x - mean)^2) / M + eps)   (two passes, f64 sums)
//   y = (x - mean) * rstd * w + b
// and keeps mean and rstd (f32, or f64 for f64 input) for the backward, as llm.c does.
//
// Backward, with xhat = (x - mean) * rstd and gy = g * w:
//   dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat))   (the fused form: one row at a time)
//   dw = sum over rows of g * xhat,  db = sum over rows of g
// dw and db are column sums over all rows. To keep them independent of the thread count,
// rows are cut into a fixed number of chunks (a function of R only); each chunk sums its rows
// into its own f64 partial, and the partials are added in chunk order afterwards.
#include "engine/ops/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv {

namespace {

// Contiguous copy in the compute dtype `ct` (or t itself); undefined stays undefined.
Tensor dense(const Tensor& t, DType ct) {
  if (!t.defined()) return t;
  return (t.dtype() == ct ? t : t.to(ct)).contiguous();
}

template <class T>
void forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t m,
                    double eps) {
  cpu::parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, m)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * m;
      T* yr = y + r * m;
      double s = 0;
      for (int64_t i = 0; i < m; ++i) s += double(xr[i]);
      const double mu = s / double(m);
      double ss = 0;
      for (int64_t i = 0; i < m; ++i) {
        const double d = double(xr[i]) - mu;
        ss += d * d;
      }
      const T mu_t = T(mu), rs_t = T(1.0 / std::sqrt(ss / double(m) + eps));
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

// dx (may be null), dw and db (null when not needed) from g, x, w (may be null), mean, rstd.
template <class T>
void backward_kernel(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                     int64_t rows, int64_t m) {
  // A fixed chunking of the rows: at most 64 chunks of at least 16 rows, from R alone.
  const int64_t nchunks = std::max<int64_t>(1, std::min<int64_t>(64, (rows + 15) / 16));
  const int64_t per = (rows + nchunks - 1) / nchunks;
  const bool want_params = dw || db;
  std::vector<double> part_w(want_params && dw ? nchunks * m : 0), part_b(want_params && db ? nchunks * m : 0);
  // (the chunking fixes the summation order; the grain only decides whether threads are worth it)
  cpu::parallel_for(nchunks, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, per * m)), [&](int64_t c0, int64_t c1) {
    std::vector<T> gy(m), xhat(m);
    for (int64_t c = c0; c < c1; ++c) {
      double* pw = dw ? part_w.data() + c * m : nullptr;
      double* pb = db ? part_b.data() + c * m : nullptr;
      if (pw) std::fill(pw, pw + m, 0.0);
      if (pb) std::fill(pb, pb + m, 0.0);
      for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
        const T* gr = g + r * m;
        const T* xr = x + r * m;
        const T mu = mean[r], rs = rstd[r];
        for (int64_t i = 0; i < m; ++i) xhat[i] = (xr[i] - mu) * rs;
        if (pw)
          for (int64_t i = 0; i < m; ++i) pw[i] += double(gr[i]) * double(xhat[i]);
        if (pb)
          for (int64_t i = 0; i < m; ++i) pb[i] += double(gr[i]);
        if (!dx) continue;
        if (w) {
          for (int64_t i = 0; i < m; ++i) gy[i] = gr[i] * w[i];
        } else {
          std::copy(gr, gr + m, gy.begin());
        }
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < m; ++i) {
          sg += double(gy[i]);
          sgx += double(gy[i]) * double(xhat[i]);
        }
        const T mg = T(sg / double(m)), mgx = T(sgx / double(m));
        T* dr = dx + r * m;
        for (int64_t i = 0; i < m; ++i) dr[i] = rs * (gy[i] - mg - xhat[i] * mgx);
      }
    }
  });
  if (!want_params) return;
  // Column sums of the partials, chunk by chunk in order: deterministic.
  cpu::parallel_for(m, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double sw = 0, sb = 0;
      for (int64_t c = 0; c < nchunks; ++c) {
        if (dw) sw += part_w[c * m + i];
        if (db) sb += part_b[c * m + i];
      }
      if (dw) dw[i] = T(sw);
      if (db) db[i] = T(sb);
    }
  });
}

void check_args(const Tensor& x, const Shape& ns, const Tensor& weight, const Tensor& bias) {
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

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  check_args(x, normalized_shape, weight, bias);
  const DType ct = cpu::compute_dtype(x.dtype());
  const int64_t m = shape_numel(normalized_shape);
  const int64_t rows = m == 0 ? 0 : x.numel() / m;
  Tensor xc = dense(x, ct), wc = dense(weight, ct), bc = dense(bias, ct);
  Tensor out = empty(x.shape(), ct), mean = empty({rows}, ct), rstd = empty({rows}, ct);
  cpu::dispatch_float(ct, "layer_norm", [&]<class T>() {
    forward_kernel<T>(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr, bc.defined() ? bc.data<T>() : nullptr,
                      out.data<T>(), mean.data<T>(), rstd.data<T>(), rows, m, eps);
  });
  if (out.dtype() != x.dtype()) out = out.to(x.dtype());
  if (auto rec = autograd::Recorder("layer_norm", {x, weight, bias})) {
    // x is saved in its own dtype (bf16 stays bf16), weight only if dx needs it.
    Tensor sx = rec.save(x), sw = rec.needs(0) ? rec.save(weight) : Tensor();
    Shape ns = normalized_shape;
    rec.finish(out, [sx, sw, mean, rstd, ns, rows, m, ct](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      Tensor gc = dense(g, ct), xc2 = dense(sx, ct), wc2 = dense(sw, ct);
      Tensor dx = n[0] ? empty(sx.shape(), ct) : Tensor();
      Tensor dw = n[1] ? empty(ns, ct) : Tensor();
      Tensor db = n[2] ? empty(ns, ct) : Tensor();
      cpu::dispatch_float(ct, "layer_norm backward", [&]<class T>() {
        backward_kernel<T>(gc.data<T>(), xc2.data<T>(), wc2.defined() ? wc2.data<T>() : nullptr, mean.data<T>(),
                           rstd.data<T>(), dx.defined() ? dx.data<T>() : nullptr,
                           dw.defined() ? dw.data<T>() : nullptr, db.defined() ? db.data<T>() : nullptr, rows, m);
      });
      return {dx, dw, db};
    });
  }
  return out;
}

}  // namespace rv
