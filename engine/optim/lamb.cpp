// lamb.cpp: the LAMB update (see lamb.h). Each parameter takes two passes: the first updates
// the moments, writes the raw update u into a scratch buffer kept between steps, and sums
// |p|^2 and |u|^2 per fixed block (deterministic norms); the second applies p -= lr * r * u.
#include "engine/optim/lamb.h"

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/norm_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv::optim {

void Lamb::step() {
  autograd::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const LambOptions& o = options_[gi];
    detail::check_adam_hypers("Lamb", o);
  }
  detail::check_range("Lamb", "max_grad_norm", defaults_.max_grad_norm, 0.0, INFINITY);

  // Dense gradients, once; then the global norm over all of them.
  std::vector<std::vector<Tensor>> grads(groups_.size());
  double sumsq = 0.0;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      Tensor g = detail::dense_grad(groups_[gi].params[i], "Lamb", param_label(gi, i));
      if (g.defined())
        sumsq += cpu::dispatch_float(g.dtype(), "Lamb", [&]<class T>() { return cpu::sum_squares(g.data<T>(), g.numel()); });
      grads[gi].push_back(g);
    }
  double clip = 1.0;
  last_grad_norm_ = -1.0;
  if (defaults_.max_grad_norm > 0.0) {
    last_grad_norm_ = std::sqrt(sumsq);
    clip = std::max(last_grad_norm_ / defaults_.max_grad_norm, 1.0);
  }

  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const LambOptions& o = options_[gi];
    Group& group = groups_[gi];
    group.step += 1;  // counted even when no parameter of the group has a gradient (as timm)
    const double t = double(group.step);
    const double bc1 = o.bias_correction ? 1.0 - std::pow(o.beta1, t) : 1.0;
    const double bc2 = o.bias_correction ? 1.0 - std::pow(o.beta2, t) : 1.0;
    const double beta3 = o.grad_averaging ? 1.0 - o.beta1 : 1.0;
    const bool averaging = beta3 == 1.0 - o.beta1;  // timm's test: lerp form when it applies
    const bool adapt = o.weight_decay != 0.0 || o.always_adapt;
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& g = grads[gi][i];
      if (!g.defined()) continue;
      Tensor& p = group.params[i];
      ParamState& st = group.state[i];
      Tensor& m = detail::state_buffer(st.buffers, "exp_avg", p);
      Tensor& v = detail::state_buffer(st.buffers, "exp_avg_sq", p);
      autograd::check_inplace(p, "Lamb.step");
      st.step += 1;
      cpu::dispatch_float(p.dtype(), "Lamb", [&]<class T>() {
        const int64_t n = p.numel();
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* mp = m.data<T>();
        T* vp = v.data<T>();
        if (scratch_.size() < size_t(n) * sizeof(T)) scratch_.resize(size_t(n) * sizeof(T));
        T* up = reinterpret_cast<T*>(scratch_.data());
        const T clip_t = T(clip), w3 = T(beta3), b1 = T(o.beta1), b2 = T(o.beta2), w2 = T(1.0 - o.beta2);
        const T bc1_t = T(bc1), bc2_sqrt = T(std::sqrt(bc2)), eps = T(o.eps), wd = T(o.weight_decay);
        const bool clipping = clip != 1.0, decay = o.weight_decay != 0.0;
        // Pass 1 over fixed blocks (not per-thread chunks), so that the |p|^2 and |u|^2 partial
        // sums, added in block order afterwards, do not depend on the thread count.
        const int64_t nb = (n + cpu::kNormBlock - 1) / cpu::kNormBlock;
        std::vector<double> p_sq(size_t(nb), 0.0), u_sq(size_t(nb), 0.0);
        cpu::parallel_for(nb, 2, [&](int64_t first, int64_t last) {
          for (int64_t blk = first; blk < last; ++blk) {
            const int64_t s = blk * cpu::kNormBlock, e = std::min(n, s + cpu::kNormBlock);
            for (int64_t k = s; k < e; ++k) {
              T gk = clipping ? gp[k] / clip_t : gp[k];
              T mk = averaging ? detail::lerp(mp[k], gk, w3) : mp[k] * b1 + w3 * gk;
              T vk = vp[k] * b2 + w2 * gk * gk;
              mp[k] = mk;
              vp[k] = vk;
              T uk = (mk / bc1_t) / (std::sqrt(vk) / bc2_sqrt + eps);
              up[k] = decay ? uk + wd * pp[k] : uk;
            }
            if (adapt) {
              p_sq[size_t(blk)] = cpu::sum_squares_block(pp + s, e - s);
              u_sq[size_t(blk)] = cpu::sum_squares_block(up + s, e - s);
            }
          }
        });
        T ratio = T(1);
        if (adapt) {
          double w_sq = 0.0, d_sq = 0.0;
          for (int64_t blk = 0; blk < nb; ++blk) w_sq += p_sq[size_t(blk)], d_sq += u_sq[size_t(blk)];
          double w_norm = std::sqrt(w_sq), u_norm = std::sqrt(d_sq);
          double r = (w_norm > 0.0 && u_norm > 0.0) ? w_norm / u_norm : 1.0;
          if (o.trust_clip) r = std::min(r, 1.0);
          ratio = T(r);
        }
        // Pass 2: p -= lr * (r * u).
        const T neg_lr = T(-o.lr);
        cpu::parallel_for(n, 16384, [&](int64_t b, int64_t e) {
          for (int64_t k = b; k < e; ++k) pp[k] = pp[k] + neg_lr * (up[k] * ratio);
        });
      });
    }
  }
}

}  // namespace rv::optim
