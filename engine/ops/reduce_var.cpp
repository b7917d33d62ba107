// reduce_var.cpp: var over any set of dims, forward and backward.
//
// Two passes in f64 per output (mean, then the sum of squared deviations) rather than the
// one-pass sum(x^2) - n mean^2, which cancels catastrophically when |mean| >> std.
// Backward: d var / dx = 2 (x - mean) / (n - correction); the forward keeps the mean for it.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/reduce_kernel.h"
#include "engine/ops/reduce.h"

namespace rv {

namespace {

// var[o] = ssd / divisor and mean[o] for every output o (both contiguous, compute dtype T).
template <class T>
void var_kernel(const T* xp, const cpu::ReducePlan& plan, double divisor, T* var, T* mean) {
  if (plan.out_numel == 0) return;
  const double n = double(plan.red_numel);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const bool tiled = !plan.kept_strides.empty() && plan.kept_strides.back() == 1 && !plan.red_strides.empty() &&
                     plan.red_strides.back() != 1;
  if (tiled) {
    // Reducing over leading dims (e.g. (B, N, C) over B and N): fold whole contiguous rows
    // into a tile of accumulators, so the inner loops are unit-stride.
    const int64_t row = plan.kept_shape.back();
    const int64_t tile = 256;
    const int64_t tiles_per_row = (row + tile - 1) / tile;
    const int64_t outer = plan.out_numel / row;
    // grain: enough tiles for ~32K element reads, so small reductions stay on one thread
    const int64_t grain = std::max<int64_t>(1, 32768 / (tile * std::max<int64_t>(1, plan.red_numel)));
    cpu::parallel_for(outer * tiles_per_row, grain, [&](int64_t t0, int64_t t1) {
      double sum[tile], ssd[tile];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = (t / tiles_per_row) * row + (t % tiles_per_row) * tile;
        const int64_t m = std::min(tile, row - (t % tiles_per_row) * tile);
        const T* base = xp + plan.base_offset(o);
        std::fill(sum, sum + m, 0.0);
        std::fill(ssd, ssd + m, 0.0);
        plan.for_each_reduced([&](int64_t off) {
          for (int64_t i = 0; i < m; ++i) sum[i] += double(base[off + i]);
        });
        for (int64_t i = 0; i < m; ++i) sum[i] /= n;  // now the mean
        plan.for_each_reduced([&](int64_t off) {
          for (int64_t i = 0; i < m; ++i) {
            const double dv = double(base[off + i]) - sum[i];
            ssd[i] += dv * dv;
          }
        });
        for (int64_t i = 0; i < m; ++i) {
          var[o + i] = T(ssd[i] / divisor);
          mean[o + i] = T(sum[i]);
        }
      }
    });
    return;
  }
  cpu::parallel_for(plan.out_numel, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plan.red_numel)),
                    [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* base = xp + plan.base_offset(o);
      double s = 0;
      plan.for_each_reduced([&](int64_t off) { s += double(base[off]); });
      const double mu = s / n;
      double ssd = 0;
      plan.for_each_reduced([&](int64_t off) {
        const double dv = double(base[off]) - mu;
        ssd += dv * dv;
      });
      var[o] = T(plan.red_numel == 0 ? nan : ssd / divisor);
      mean[o] = T(mu);
    }
  });
}

}  // namespace

Tensor var(const Tensor& x, const Shape& dims, double correction, bool keepdim) {
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string("var: expected a float tensor, got ") + dtype_name(x.dtype()));
  std::vector<bool> mask = cpu::reduced_dims_mask(x, dims, "var");
  const DType ct = cpu::compute_dtype(x.dtype());
  Tensor xw = x.dtype() == ct ? x : x.to(ct);
  cpu::ReducePlan plan(xw, mask, keepdim);
  // PyTorch clamps the divisor at 0: too large a correction gives inf/NaN, never a negative.
  const double divisor = std::max(0.0, double(plan.red_numel) - correction);
  Tensor out = empty(plan.out_shape, ct), mu = empty(plan.out_shape, ct);
  cpu::dispatch_float(ct, "var", [&]<class T>() {
    var_kernel<T>(xw.data<T>(), plan, divisor, out.data<T>(), mu.data<T>());
  });
  if (out.dtype() != x.dtype()) out = out.to(x.dtype());
  if (auto rec = autograd::Recorder("var", {x})) {
    Shape kshape = x.shape();  // the keepdim shape, so g and mean broadcast against x
    for (size_t d = 0; d < kshape.size(); ++d)
      if (mask[d]) kshape[d] = 1;
    Tensor sx = rec.save(x), smu = mu.reshape(kshape);
    const double scale = 2.0 / divisor;
    rec.finish(out, [sx, smu, kshape, scale](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {cpu::map_ternary(g.reshape(kshape), sx, smu, "var", [scale](auto gv, auto v, auto m) {
        using T = decltype(v);
        return gv * T(scale) * (v - m);
      })};
    });
  }
  return out;
}

}  // namespace rv
