// adamw.cpp: the AdamW update loop (see adamw.h for the formulas).
//
// Scalars (bias corrections, step size) are computed in double and rounded once to the
// parameter's type, and the per-element operations follow torch's order (mul_, lerp_,
// mul_ + addcmul_, sqrt / bc2_sqrt + eps, addcdiv_), so a float32 run tracks PyTorch's to
// within rounding. Each element is independent: the loop is split across threads freely and
// stays deterministic.
//
// Parameters on a device are not updated here one by one: step() collects them (with their
// per-parameter scalars) and hands them all to the backend's fused adamw_step, one launch for
// the whole model (cuda/kernels/adamw.cu), with the same arithmetic.
#include "engine/optim/adamw.h"

#include <cmath>
#include <deque>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/parallel.h"

namespace rv::optim {

void AdamW::step() {
  autograd::NoGradGuard no_grad;
  std::vector<backend::DeviceBackend::AdamWParam> on_device;  // one fused launch after the loop
  std::deque<Tensor> device_grads;                            // keeps them alive (stable addresses)
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
      Tensor* vmax_slot = o.amsgrad ? &detail::state_buffer(st.buffers, "max_exp_avg_sq", p) : nullptr;
      Tensor vmax = vmax_slot ? *vmax_slot : Tensor();
      autograd::check_inplace(p, "AdamW.step");  // bumps the version: stale graphs must not reuse p
      st.step += 1;
      if (!p.device().is_cpu()) {
        if (!on_device.empty() && on_device[0].param->device() != p.device())
          throw std::invalid_argument("AdamW: parameters on " + on_device[0].param->device().str() + " and " +
                                      p.device().str() + "; one optimizer updates one device");
        device_grads.push_back(g);
        on_device.push_back({&p, &device_grads.back(), &m, &v, vmax_slot, o.lr, o.beta1, o.beta2, o.eps,
                             o.weight_decay, st.step});
        continue;
      }
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
  if (!on_device.empty()) backend::get(on_device[0].param->device()).adamw_step(on_device);
}

}  // namespace rv::optim
