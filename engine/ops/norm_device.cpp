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
#include "engine/ops/norm_device.h"

#include <algorithm>
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
