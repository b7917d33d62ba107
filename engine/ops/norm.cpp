// norm.cpp: batch_norm and group_norm, forward and backward.
//
// Layout: x is made dense as (B, C, S), S the product of the spatial dims (H * W for images),
// so a "plane" (b, c) is S contiguous values and a group (b, g) is C / groups consecutive
// planes. Kernels work plane by plane: inner loops run over S (contiguous, vectorisable),
// partial sums are f64, and per-channel totals add the planes in batch order. Each plane or
// group is handled by one thread, so the bits do not depend on the thread count. Variances
// are two-pass (mean first, then squared deviations), which stays accurate when |mean| >> std.
//
// Backward, with r = 1 / sqrt(var + eps), xc = x - mean, xhat = xc r, dy = g w and m values
// per statistic:
//   dx = r (dy - mean(dy) - xhat mean(dy xhat))
//      = (w r) g - (w r^3 sum(g xc) / m) xc - w r sum(g) / m      [statistics of this batch]
//   dx = (w r) g                                                   [batch norm in eval mode]
//   dweight = sum(g xhat),  dbias = sum(g)
// (for group norm the sums run over the group's channels, each term with its own w_c).
#include "engine/ops/norm.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/cpu/dense.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/norm_device.h"
#include "engine/ops/replica_group.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

using cpu::dense;

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Checks an optional per-channel tensor (weight, bias, running stats): float, shape (C).
void check_channel_param(const char* op, const char* arg, const Tensor& t, int64_t C) {
  if (!t.defined()) return;
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected " + arg + " to be a float tensor, got " +
                                dtype_name(t.dtype()));
  if (t.shape() != Shape{C})
    throw std::invalid_argument(std::string(op) + ": expected " + arg + " of shape [" + std::to_string(C) +
                                "] (one per channel), got " + shape_str(t.shape()));
}

void check_input(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected a float input, got " + dtype_name(x.dtype()));
  if (x.dim() < 2)
    throw std::invalid_argument(std::string(op) + ": expected input of shape (B, C) or (B, C, d1, ...), got " +
                                shape_str(x.shape()));
}

int64_t spatial_size(const Tensor& x) {
  int64_t s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s *= x.shape()[d];
  return s;
}

// f64 sum of f(i) for i in [0, n) over kAcc independent accumulators (element i always goes to
// accumulator i % kAcc, combined in a fixed tree). Eight independent add chains keep the FP
// adders busy where one chain would wait on each add's latency (3-4x faster here), with no
// -ffast-math; the fixed pattern keeps the bits independent of the thread count.
constexpr int64_t kAcc = 8;

template <class F>
double fold_sum(int64_t n, F&& f) {
  double acc[kAcc] = {};
  int64_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (int64_t k = 0; k < kAcc; ++k) acc[k] += f(i + k);
  for (int64_t k = 0; i + k < n; ++k) acc[k] += f(i + k);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Two such sums in one pass: f(i, a, b) adds its terms to a and b.
template <class F>
void fold_sum2(int64_t n, F&& f, double& out_a, double& out_b) {
  double a[kAcc] = {}, b[kAcc] = {};
  int64_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (int64_t k = 0; k < kAcc; ++k) f(i + k, a[k], b[k]);
  for (int64_t k = 0; i + k < n; ++k) f(i + k, a[k], b[k]);
  out_a = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  out_b = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

// A (C) tensor of dtype dt holding v.
Tensor channel_tensor(const std::vector<double>& v, DType dt) {
  return from_vector(v, {int64_t(v.size())}, dt);
}

// Per-plane sums over S values: pg[u] = sum g, pgx[u] = sum g (x - mean[stat(u)]), u = b * C + c.
template <class T, class StatOf>
void plane_grad_sums(const T* x, const T* g, int64_t planes, int64_t S, const std::vector<double>& mean,
                     StatOf stat_of, std::vector<double>& pg, std::vector<double>& pgx) {
  pg.assign(planes, 0.0);
  pgx.assign(planes, 0.0);
  cpu::parallel_for(planes, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, S)), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const T* xu = x + u * S;
      const T* gu = g + u * S;
      const T mu = T(mean[stat_of(u)]);
      fold_sum2(S, [&](int64_t s, double& sg, double& sgx) {
        sg += double(gu[s]);
        sgx += double(gu[s]) * double(xu[s] - mu);
      }, pg[u], pgx[u]);
    }
  });
}

}  // namespace

// ---- batch norm ----------------------------------------------------------------------------

namespace {

// batch_norm and sync_batch_norm: one kernel. With a group (sync_batch_norm, always training),
// the statistics are the whole group's (replica_group.h) and the backward all-reduces its two
// per-channel sums before forming dx; without one, the bits are batch_norm's alone.
Tensor batch_norm_impl(const char* op, const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps,
                       const std::shared_ptr<ReplicaGroup>& group) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x), weight_ac = autocast::cast_f32(weight), bias_ac = autocast::cast_f32(bias);
    autocast::DisabledGuard inside;
    return batch_norm_impl(op, x_ac, running_mean, running_var, weight_ac, bias_ac, training, momentum, eps, group);
  }
  check_input(op, x);
  const int64_t B = x.size(0), C = x.size(1), S = spatial_size(x);
  const int64_t n_local = B * S;  // values per channel on this rank
  check_channel_param(op, "weight", weight, C);
  check_channel_param(op, "bias", bias, C);
  check_channel_param(op, "running_mean", running_mean, C);
  check_channel_param(op, "running_var", running_var, C);
  if (running_mean.defined() != running_var.defined())
    throw std::invalid_argument(std::string(op) + ": running_mean and running_var must be given together");
  if (!training && !running_mean.defined())
    throw std::invalid_argument(std::string(op) + ": running_mean and running_var are required when training is false");
  for (const Tensor* t : {&running_mean, &running_var})
    if (t->defined() && t->requires_grad())
      throw std::invalid_argument(std::string(op) + ": the running statistics are buffers updated in place and must "
                                  "not require grad");
  if (training && !group && n_local == 1)
    throw std::invalid_argument("batch_norm: expected more than 1 value per channel when training, got input of "
                                "shape " + shape_str(x.shape()));
  if (!x.device().is_cpu()) {
    if (group)
      return sync_batch_norm_composed_on_device(x, running_mean, running_var, weight, bias, momentum, eps, group);
    return batch_norm_composed_on_device(x, running_mean, running_var, weight, bias, training, momentum, eps);
  }
  const DType dt = x.dtype(), ct = cpu::compute_dtype(dt);

  int64_t n = n_local;                           // values per channel the statistics cover
  std::vector<double> mean(C), var(C), rstd(C);  // the statistics that normalise x
  Tensor xd = dense(x, ct), wd = weight.defined() ? dense(weight, ct) : Tensor();
  Tensor bd = bias.defined() ? dense(bias, ct) : Tensor();
  Tensor y = empty(x.shape(), ct);
  cpu::dispatch_float(ct, op, [&]<class T>() {
    const T* xp = xd.data<T>();
    const int64_t planes = B * C;
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, S));
    if (training) {
      std::vector<double> part(planes);
      auto per_channel = [&](std::vector<double>& out) {  // out[c] = sum over b of part[b, c] / n
        for (int64_t c = 0; c < C; ++c) {
          double s = 0;
          for (int64_t b = 0; b < B; ++b) s += part[b * C + c];
          out[c] = n_local > 0 ? s / double(n_local) : 0.0;
        }
      };
      cpu::parallel_for(planes, grain, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
          const T* xu = xp + u * S;
          part[u] = fold_sum(S, [&](int64_t i) { return double(xu[i]); });
        }
      });
      per_channel(mean);
      cpu::parallel_for(planes, grain, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
          const double mu = mean[u % C];
          const T* xu = xp + u * S;
          part[u] = fold_sum(S, [&](int64_t i) {
            const double d = double(xu[i]) - mu;
            return d * d;
          });
        }
      });
      per_channel(var);
      if (group) {  // this rank's (count, mean, squared deviations) merged with the others'
        std::vector<double> m2(C);
        for (int64_t c = 0; c < C; ++c) m2[c] = var[c] * double(n_local);
        GroupStats g = combine_channel_stats(*group, n_local, mean, m2);
        if (g.count == 1)
          throw std::invalid_argument(std::string(op) + ": expected more than 1 value per channel over all ranks "
                                      "when training, got 1 (this rank's input has shape " + shape_str(x.shape()) +
                                      ")");
        n = g.count;
        mean = std::move(g.mean);
        var = std::move(g.var);
      }
    } else {
      mean = running_mean.to_double_vector();
      var = running_var.to_double_vector();
    }
    for (int64_t c = 0; c < C; ++c) rstd[c] = 1.0 / std::sqrt(var[c] + eps);
    // y = x * scale + shift per channel
    const T* wp = ptr_or_null<T>(wd);
    const T* bp = ptr_or_null<T>(bd);
    T* yp = y.data<T>();
    cpu::parallel_for(planes, grain, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t c = u % C;
        const double sc = (wp ? double(wp[c]) : 1.0) * rstd[c];
        const T scale = T(sc), shift = T((bp ? double(bp[c]) : 0.0) - mean[c] * sc);
        const T* xu = xp + u * S;
        T* yu = yp + u * S;
        for (int64_t i = 0; i < S; ++i) yu[i] = xu[i] * scale + shift;
      }
    });
  });

  if (training && running_mean.defined() && n > 0) {  // PyTorch leaves the buffers alone for empty input
    std::vector<double> rm = running_mean.to_double_vector(), rv = running_var.to_double_vector();
    const double unbias = double(n) / double(n - 1);
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
      rv[c] = (1 - momentum) * rv[c] + momentum * var[c] * unbias;
    }
    Tensor rmut = running_mean, rvut = running_var;  // handles to the caller's buffers
    rmut.copy_(channel_tensor(rm, DType::f64));
    rvut.copy_(channel_tensor(rv, DType::f64));
  }

  Tensor out = y.to(dt);
  if (auto rec = autograd::Recorder(op, {x, weight, bias})) {
    Tensor sx = rec.save(x), sw = rec.save(weight);
    const DType bias_dtype = bias.defined() ? bias.dtype() : dt;
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor xd = dense(sx, ct), gd = dense(g, ct), wd = sw.defined() ? dense(sw, ct) : Tensor();
      std::vector<double> sum_g(C, 0.0), sum_gxc(C, 0.0);  // per channel: sum g, sum g (x - mean)
      std::vector<double> local_g, local_gxc;  // with a group: this rank's sums (dweight, dbias)
      Tensor gx = need[0] ? empty(sx.shape(), ct) : Tensor();
      cpu::dispatch_float(ct, op, [&]<class T>() {
        const T* xp = xd.data<T>();
        const T* gp = gd.data<T>();
        const T* wp = ptr_or_null<T>(wd);
        const int64_t planes = B * C;
        if (training || need[1] || need[2]) {
          std::vector<double> pg, pgx;
          plane_grad_sums(xp, gp, planes, S, mean, [C](int64_t u) { return u % C; }, pg, pgx);
          for (int64_t c = 0; c < C; ++c)
            for (int64_t b = 0; b < B; ++b) {
              sum_g[c] += pg[b * C + c];
              sum_gxc[c] += pgx[b * C + c];
            }
        }
        if (group) {
          // dx needs the sums over every rank's batch (each rank's loss depends on all x through
          // the shared statistics); dweight and dbias stay this rank's share, which the gradient
          // all-reduce of data-parallel training then adds up, as for any other parameter. Every
          // rank issues this collective, whatever it needs: the ranks run the same graph.
          local_g = sum_g;
          local_gxc = sum_gxc;
          all_reduce_channel_sums(*group, sum_g, sum_gxc);
        }
        if (!need[0]) return;
        T* gxp = gx.data<T>();
        cpu::parallel_for(planes, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, S)), [&](int64_t u0, int64_t u1) {
          for (int64_t u = u0; u < u1; ++u) {
            const int64_t c = u % C;
            const double wr = (wp ? double(wp[c]) : 1.0) * rstd[c];
            const T k1 = T(wr);
            const T k2 = training ? T(-wr * rstd[c] * rstd[c] * sum_gxc[c] / double(n)) : T(0);
            const T k3 = training ? T(-wr * sum_g[c] / double(n)) : T(0);
            const T mu = T(mean[c]);
            const T* xu = xp + u * S;
            const T* gu = gp + u * S;
            T* o = gxp + u * S;
            for (int64_t i = 0; i < S; ++i) o[i] = k1 * gu[i] + k2 * (xu[i] - mu) + k3;
          }
        });
      });
      const std::vector<double>& own_g = group ? local_g : sum_g;
      const std::vector<double>& own_gxc = group ? local_gxc : sum_gxc;
      Tensor gw, gb;
      if (need[1]) {
        std::vector<double> v(C);
        for (int64_t c = 0; c < C; ++c) v[c] = own_gxc[c] * rstd[c];
        gw = channel_tensor(v, sw.dtype());
      }
      if (need[2]) gb = channel_tensor(own_g, bias_dtype);
      return {need[0] ? gx.to(sx.dtype()) : Tensor(), gw, gb};
    });
  }
  return out;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm", x, running_mean, running_var, weight, bias, training, momentum, eps, nullptr);
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, const std::shared_ptr<ReplicaGroup>& group, double momentum, double eps) {
  // One rank (or no group): nothing to combine, so exactly batch_norm's path and bits.
  if (!group || group->world_size() == 1)
    return batch_norm(x, running_mean, running_var, weight, bias, true, momentum, eps);
  return batch_norm_impl("sync_batch_norm", x, running_mean, running_var, weight, bias, true, momentum, eps, group);
}

// ---- group norm ----------------------------------------------------------------------------

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor x_ac = autocast::cast_f32(x), weight_ac = autocast::cast_f32(weight), bias_ac = autocast::cast_f32(bias);
    autocast::DisabledGuard inside;
    return group_norm(x_ac, groups, weight_ac, bias_ac, eps);
  }
  const char* op = "group_norm";
  check_input(op, x);
  const int64_t B = x.size(0), C = x.size(1), S = spatial_size(x);
  if (groups <= 0 || C % groups != 0)
    throw std::invalid_argument("group_norm: expected the channel count C = " + std::to_string(C) +
                                " to be divisible by groups = " + std::to_string(groups) + " (input shape " +
                                shape_str(x.shape()) + ")");
  check_channel_param(op, "weight", weight, C);
  check_channel_param(op, "bias", bias, C);
  if (!x.device().is_cpu()) return group_norm_composed_on_device(x, groups, weight, bias, eps);
  const int64_t G = groups, cpg = C / G, m = cpg * S;  // m values per (sample, group)
  const DType dt = x.dtype(), ct = cpu::compute_dtype(dt);

  std::vector<double> mean(B * G), rstd(B * G);
  Tensor xd = dense(x, ct), wd = weight.defined() ? dense(weight, ct) : Tensor();
  Tensor bd = bias.defined() ? dense(bias, ct) : Tensor();
  Tensor y = empty(x.shape(), ct);
  cpu::dispatch_float(ct, op, [&]<class T>() {
    const T* xp = xd.data<T>();
    const T* wp = ptr_or_null<T>(wd);
    const T* bp = ptr_or_null<T>(bd);
    T* yp = y.data<T>();
    // group u = b * G + g covers the m contiguous values at u * m
    cpu::parallel_for(B * G, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, m)), [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const T* xu = xp + u * m;
        const double mu = fold_sum(m, [&](int64_t i) { return double(xu[i]); }) / double(m);
        const double v = fold_sum(m, [&](int64_t i) {
          const double d = double(xu[i]) - mu;
          return d * d;
        });
        const double r = 1.0 / std::sqrt(v / double(m) + eps);
        mean[u] = mu;
        rstd[u] = r;
        for (int64_t cl = 0; cl < cpg; ++cl) {
          const int64_t c = (u % G) * cpg + cl;
          const double sc = (wp ? double(wp[c]) : 1.0) * r;
          const T scale = T(sc), shift = T((bp ? double(bp[c]) : 0.0) - mu * sc);
          const T* xc = xu + cl * S;
          T* yc = yp + u * m + cl * S;
          for (int64_t i = 0; i < S; ++i) yc[i] = xc[i] * scale + shift;
        }
      }
    });
  });

  Tensor out = y.to(dt);
  if (auto rec = autograd::Recorder(op, {x, weight, bias})) {
    Tensor sx = rec.save(x), sw = rec.save(weight);
    const DType bias_dtype = bias.defined() ? bias.dtype() : dt;
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor xd = dense(sx, ct), gd = dense(g, ct), wd = sw.defined() ? dense(sw, ct) : Tensor();
      Tensor gx = need[0] ? empty(sx.shape(), ct) : Tensor();
      std::vector<double> pg, pgx;  // per plane (b, c): sum g, sum g (x - mean)
      cpu::dispatch_float(ct, op, [&]<class T>() {
        const T* xp = xd.data<T>();
        const T* gp = gd.data<T>();
        const T* wp = ptr_or_null<T>(wd);
        plane_grad_sums(xp, gp, B * C, S, mean, [cpg](int64_t u) { return u / cpg; }, pg, pgx);
        if (!need[0]) return;
        T* gxp = gx.data<T>();
        cpu::parallel_for(B * G, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, m)), [&](int64_t u0, int64_t u1) {
          for (int64_t u = u0; u < u1; ++u) {
            const double r = rstd[u];
            double sum_dy = 0, sum_dyxc = 0;  // over the group: sum w_c g, sum w_c g (x - mean)
            for (int64_t cl = 0; cl < cpg; ++cl) {
              const int64_t c = (u % G) * cpg + cl;
              const double wc = wp ? double(wp[c]) : 1.0;
              sum_dy += wc * pg[u * cpg + cl];
              sum_dyxc += wc * pgx[u * cpg + cl];
            }
            const T k2 = T(-r * r * r * sum_dyxc / double(m)), k3 = T(-r * sum_dy / double(m));
            const T mu = T(mean[u]);
            for (int64_t cl = 0; cl < cpg; ++cl) {
              const int64_t c = (u % G) * cpg + cl;
              const T k1 = T((wp ? double(wp[c]) : 1.0) * r);
              const T* xc = xp + u * m + cl * S;
              const T* gc = gp + u * m + cl * S;
              T* o = gxp + u * m + cl * S;
              for (int64_t i = 0; i < S; ++i) o[i] = k1 * gc[i] + k2 * (xc[i] - mu) + k3;
            }
          }
        });
      });
      Tensor gw, gb;
      if (need[1] || need[2]) {
        std::vector<double> vw(C, 0.0), vb(C, 0.0);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t b = 0; b < B; ++b) {
            vw[c] += pgx[b * C + c] * rstd[b * G + c / cpg];
            vb[c] += pg[b * C + c];
          }
        if (need[1]) gw = channel_tensor(vw, sw.dtype());
        if (need[2]) gb = channel_tensor(vb, bias_dtype);
      }
      return {need[0] ? gx.to(sx.dtype()) : Tensor(), gw, gb};
    });
  }
  return out;
}

}  // namespace rv
