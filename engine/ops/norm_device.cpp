// norm_device.cpp: batch norm and group norm on a device as a handful of recorded ops:
//
//   mean = mean(x, stat dims)            xc = x - mean
//   var  = mean(xc * xc, stat dims)      y  = xc * rsqrt(var + eps) * weight + bias
//
// with the statistics over (batch, spatial) per channel for batch norm, and over (channels of
// the group, spatial) per (sample, group) for group norm (x viewed as (B, G, C/G * S)). Why
// composed: every piece (the reduction over dims, the broadcast arithmetic, rsqrt) is a device
// kernel tested on its own, and autograd then gives the exact backward of these formulas,
// through the statistics, for free. The price: a few more passes over x than a fused kernel,
// and f32 statistics where the CPU op sums in f64 (the CUDA reductions are two-stage, so the
// results are deterministic). The running buffers are updated in place as PyTorch does, outside
// the graph.
//
// sync_batch_norm cannot be composed that way (the statistics cross ranks, so autograd would see
// them as constants): its forward is computed without a graph and its backward written out.
#include "engine/ops/norm_device.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"

namespace rv {

namespace {

void require_same_device(const char* op, const Tensor& x, std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    if (t->defined() && !(t->device() == x.device()))
      throw std::invalid_argument(std::string(op) + ": x is on " + x.device().str() + " but a parameter or buffer is on " +
                                  t->device().str() + "; move the module with .to(device)");
}

// A (C) parameter shaped to broadcast against (B, C, d1, ...): (C, 1, ..., 1).
Tensor per_channel(const Tensor& p, int64_t spatial_dims) {
  Shape s{p.numel()};
  for (int64_t d = 0; d < spatial_dims; ++d) s.push_back(1);
  return p.reshape(s);
}

}  // namespace

Tensor batch_norm_composed_on_device(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                     const Tensor& weight, const Tensor& bias, bool training, double momentum,
                                     double eps) {
  require_same_device("batch_norm", x, {&running_mean, &running_var, &weight, &bias});
  const int64_t C = x.size(1), spatial_dims = x.dim() - 2;
  Shape stat_dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) stat_dims.push_back(d);
  const int64_t n = x.numel() / std::max<int64_t>(C, 1);  // values per channel

  Tensor mean_b, var_b;  // the statistics, shaped to broadcast against (B, C, ...)
  Tensor xc;
  if (training) {
    mean_b = mean(x, stat_dims, /*keepdim=*/true);  // (1, C, 1, ..., 1)
    xc = sub(x, mean_b);
    var_b = mean(mul(xc, xc), stat_dims, /*keepdim=*/true);
    if (running_mean.defined() && n > 0) {  // PyTorch leaves the buffers alone for empty input
      autograd::NoGradGuard no_grad;
      const double unbias = double(n) / double(n - 1);
      const Tensor m = mean_b.detach().reshape({C}).to(running_mean.dtype());
      const Tensor v = var_b.detach().reshape({C}).to(running_var.dtype());
      Tensor rmut = running_mean, rvut = running_var;  // handles to the caller's buffers
      rmut.copy_(add(mul(running_mean, 1 - momentum), mul(m, momentum)));
      rvut.copy_(add(mul(running_var, 1 - momentum), mul(v, momentum * unbias)));
    }
  } else {
    mean_b = per_channel(running_mean.to(x.dtype()), spatial_dims);
    var_b = per_channel(running_var.to(x.dtype()), spatial_dims);
    xc = sub(x, mean_b);
  }
  Tensor y = mul(xc, rsqrt(add(var_b, eps)));
  if (weight.defined()) y = mul(y, per_channel(weight, spatial_dims));
  if (bias.defined()) y = add(y, per_channel(bias, spatial_dims));
  return y;
}

namespace {

// The per-channel values of a (1, C, 1, ...) or (C) tensor, on the host in f64.
std::vector<double> sync_bn_host_channels(const Tensor& t) { return t.to(cpu_device()).to_double_vector(); }

// A host vector (C) as a (1, C, 1, ..., 1) tensor of dtype dt on x's device.
Tensor sync_bn_channel_on_device(const std::vector<double>& v, const Tensor& x, DType dt) {
  Shape s{1, int64_t(v.size())};
  for (int64_t d = 2; d < x.dim(); ++d) s.push_back(1);
  return from_vector(v, s, dt).to(x.device());
}

}  // namespace

Tensor sync_batch_norm_composed_on_device(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                          const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                          const std::shared_ptr<ReplicaGroup>& group) {
  const char* op = "sync_batch_norm";
  require_same_device(op, x, {&running_mean, &running_var, &weight, &bias});
  const int64_t C = x.size(1), spatial_dims = x.dim() - 2;
  Shape stat_dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) stat_dims.push_back(d);
  const int64_t n_local = x.numel() / std::max<int64_t>(C, 1);
  // Statistics in f32 at least (bf16 / f16 inputs are widened, as the CPU kernel does).
  const DType ct = x.dtype() == DType::f64 ? DType::f64 : DType::f32;

  Tensor xc, rstd_b, out;  // x - mean (B, C, ...), 1 / sqrt(var + eps) (1, C, 1, ...), y
  int64_t n = 0;
  {
    autograd::NoGradGuard no_grad;  // values only: the backward below is written out
    const Tensor xf = x.to(ct);
    std::vector<double> mean_l(static_cast<size_t>(C), 0.0), m2_l(static_cast<size_t>(C), 0.0);
    if (n_local > 0) {
      const Tensor mean_b = mean(xf, stat_dims, /*keepdim=*/true);  // (1, C, 1, ..., 1)
      const Tensor d = sub(xf, mean_b);
      mean_l = sync_bn_host_channels(mean_b);
      m2_l = sync_bn_host_channels(sum(mul(d, d), stat_dims));
    }
    GroupStats g = combine_channel_stats(*group, n_local, mean_l, m2_l);
    if (g.count == 1)
      throw std::invalid_argument("sync_batch_norm: expected more than 1 value per channel over all ranks when "
                                  "training, got 1 (this rank's input has shape " + shape_str(x.shape()) + ")");
    n = g.count;
    std::vector<double> rstd(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) rstd[size_t(c)] = 1.0 / std::sqrt(g.var[size_t(c)] + eps);
    xc = sub(xf, sync_bn_channel_on_device(g.mean, x, ct));
    rstd_b = sync_bn_channel_on_device(rstd, x, ct);
    Tensor y = mul(xc, rstd_b);
    if (weight.defined()) y = mul(y, per_channel(weight.to(ct), spatial_dims));
    if (bias.defined()) y = add(y, per_channel(bias.to(ct), spatial_dims));
    out = y.to(x.dtype());
    if (running_mean.defined() && n > 0) {  // the global mean and unbiased variance, as torch
      const double unbias = double(n) / double(n - 1);
      std::vector<double> v = g.var;
      for (double& e : v) e *= unbias;
      const Tensor m = from_vector(g.mean, {C}, running_mean.dtype()).to(x.device());
      const Tensor uv = from_vector(v, {C}, running_var.dtype()).to(x.device());
      Tensor rmut = running_mean, rvut = running_var;  // handles to the caller's buffers
      rmut.copy_(add(mul(running_mean, 1 - momentum), mul(m, momentum)));
      rvut.copy_(add(mul(running_var, 1 - momentum), mul(uv, momentum)));
    }
  }
  if (auto rec = autograd::Recorder(op, {x, weight, bias})) {
    // xc and rstd_b were made under NoGradGuard: plain values, safe to keep in the closure.
    const Tensor w = weight.defined() ? rec.save(weight) : Tensor();
    const DType x_dtype = x.dtype(), w_dtype = weight.defined() ? weight.dtype() : ct;
    const DType b_dtype = bias.defined() ? bias.dtype() : ct;
    rec.finish(out, [=](const Tensor& g, const autograd::Needs& need) -> autograd::Grads {
      const Tensor gf = g.to(ct);
      // This rank's sums, then the group's (the same collective on every rank, as on the CPU).
      const Tensor sg_l = sum(gf, stat_dims), sgx_l = sum(mul(gf, xc), stat_dims);  // (C) each
      std::vector<double> sg = sync_bn_host_channels(sg_l), sgx = sync_bn_host_channels(sgx_l);
      all_reduce_channel_sums(*group, sg, sgx);
      Tensor gx, gw, gb;
      if (need[0]) {
        // dx = w r (g - sum g / n - xc r^2 sum(g xc) / n), the sums over every rank
        Tensor wr = w.defined() ? mul(rstd_b, per_channel(w.to(ct), spatial_dims)) : rstd_b;
        std::vector<double> k_mean(static_cast<size_t>(C)), k_xc(static_cast<size_t>(C));
        const std::vector<double> r = sync_bn_host_channels(rstd_b);
        for (int64_t c = 0; c < C; ++c) {
          k_mean[size_t(c)] = sg[size_t(c)] / double(n);
          k_xc[size_t(c)] = r[size_t(c)] * r[size_t(c)] * sgx[size_t(c)] / double(n);
        }
        const Tensor centred = sub(gf, sync_bn_channel_on_device(k_mean, xc, ct));
        const Tensor inner = sub(centred, mul(xc, sync_bn_channel_on_device(k_xc, xc, ct)));
        gx = mul(inner, wr).to(x_dtype);
      }
      if (need[1]) gw = mul(sgx_l, rstd_b.reshape({C})).to(w_dtype);  // this rank's share
      if (need[2]) gb = sg_l.to(b_dtype);
      return {gx, gw, gb};
    });
  }
  return out;
}

Tensor group_norm_composed_on_device(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                                     double eps) {
  require_same_device("group_norm", x, {&weight, &bias});
  const int64_t B = x.size(0), spatial_dims = x.dim() - 2;
  const Tensor xg = x.reshape({B, groups, -1});  // (B, G, C/G * S)
  const Tensor mean_g = mean(xg, {2}, /*keepdim=*/true);
  const Tensor xc = sub(xg, mean_g);
  const Tensor var_g = mean(mul(xc, xc), {2}, /*keepdim=*/true);
  Tensor y = mul(xc, rsqrt(add(var_g, eps))).reshape(x.shape());
  if (weight.defined()) y = mul(y, per_channel(weight, spatial_dims));
  if (bias.defined()) y = add(y, per_channel(bias, spatial_dims));
  return y;
}

}  // namespace rv
