// adamw.h: AdamW (Loshchilov & Hutter), with the arithmetic of torch.optim.AdamW (foreach=False).
//
// Per parameter p with gradient g, at step t (counted per parameter):
//   p   *= 1 - lr * weight_decay                 decoupled weight decay, before the moments
//   m    = lerp(m, g, 1 - beta1)                 first moment
//   v    = beta2 * v + (1 - beta2) * g * g       second moment
//   vmax = max(vmax, v)                          amsgrad only; vmax replaces v below
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p   -= lr / (1 - beta1^t) * m / denom
// State per parameter: step, exp_avg (m), exp_avg_sq (v), max_exp_avg_sq (amsgrad).
#pragma once
#include "engine/optim/optimizer.h"

namespace rv::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;

  template <class F>
  void fields(F&& f) {
    f("lr", lr), f("beta1", beta1), f("beta2", beta2), f("eps", eps), f("weight_decay", weight_decay),
        f("amsgrad", amsgrad);
  }
};

class AdamW : public OptimizerWith<AdamWOptions> {
 public:
  explicit AdamW(const std::vector<ParamGroup>& groups, const AdamWOptions& defaults = {})
      : OptimizerWith("AdamW", groups, defaults) {}
  void step() override;
};

}  // namespace rv::optim
