// adamw.cpp: the AdamW update loop (see adamw.h for the formulas).
//
// Scalars (bias corrections, step size) are computed in double and rounded once to the
// parameter's type, and the per-element operations follow torch's order (mul_, lerp_,
// mul_ + addcmul_, sqrt / bc2_sqrt + eps, addcdiv_), so a float32 run tracks PyTorch's to
// within rounding. Each element is independent: the loop is split across threads freely and
// stays deterministic.
#include "engine/optim/adamw.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/parallel.h"

namespace rv::optim {

void AdamW::step() {
  autograd::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const AdamWOptions& o = options_[gi];
    detail::check_adam_hypers("AdamW", o);
    Group& group = groups_[gi];
    for (size_t i = 0; i < group.params.size(); ++i) {
      Tensor& p = group.params[i];
      Tensor g = detail::dense_grad(p, "AdamW", param_label(gi, i));
      if (!g.defined()) continue;
      ParamState& st = group.state[i];
      Tensor& m = detail::state_buffer(st.buffers, "exp_avg", p);
      Tensor& v = detail::state_buffer(st.buffers, "exp_avg_sq", p);
      Tensor vmax = o.amsgrad ? detail::state_buffer(st.buffers, "max_exp_avg_sq", p) : Tensor();
      autograd::check_inplace(p, "AdamW.step");  // bumps the version: stale graphs must not reuse p
      st.step += 1;
      const double bc1 = 1.0 - std::pow(o.beta1, double(st.step));
      const double bc2 = 1.0 - std::pow(o.beta2, double(st.step));
      cpu::dispatch_float(p.dtype(), "AdamW", [&]<class T>() {
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* mp = m.data<T>();
        T* vp = v.data<T>();
        T* vmp = o.amsgrad ? vmax.data<T>() : nullptr;
        const T decay = T(1.0 - o.lr * o.weight_decay);
        const T w1 = T(1.0 - o.beta1), b2 = T(o.beta2), w2 = T(1.0 - o.beta2);
        const T bc2_sqrt = T(std::sqrt(bc2)), eps = T(o.eps), neg_step = T(-(o.lr / bc1));
        cpu::parallel_for(p.numel(), 16384, [&](int64_t b, int64_t e) {
          for (int64_t k = b; k < e; ++k) {
            T gk = gp[k];
            T pk = pp[k] * decay;
            T mk = detail::lerp(mp[k], gk, w1);
            T vk = vp[k] * b2 + w2 * gk * gk;
            mp[k] = mk;
            vp[k] = vk;
            if (vmp) {
              vk = vmp[k] > vk ? vmp[k] : vk;
              vmp[k] = vk;
            }
            T denom = std::sqrt(vk) / bc2_sqrt + eps;
            pp[k] = pk + neg_step * mk / denom;
          }
        });
      });
    }
  }
}

}  // namespace rv::optim
