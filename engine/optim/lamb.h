// lamb.h: LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning"), following
// timm's Lamb (timm/optim/lamb.py, the NVIDIA FusedLAMB variant) with its defaults.
//
// Before the groups are visited, all gradients are clipped together: with
// N = sqrt(sum over every parameter of |g|^2) and c = max(N / max_grad_norm, 1), each update
// uses g / c (the stored .grad is left untouched). Then per group, with its step t counted per
// group, and per parameter p:
//   m = lerp(m, g, 1 - beta1)   (grad_averaging; else m = beta1 * m + g)
//   v = beta2 * v + (1 - beta2) * g * g
//   u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)      bc = 1 - beta^t (or 1 without bias_correction)
//   u += weight_decay * p                            (when weight_decay != 0)
//   r = |p| / |u|, or 1 when |p| = 0 or |u| = 0;  r = min(r, 1) with trust_clip (LAMBC)
//   u *= r                                           (when weight_decay != 0 or always_adapt)
//   p -= lr * u
// So parameters without weight decay (norms, biases, embeddings) get a plain Adam step by
// default. State: exp_avg, exp_avg_sq per parameter, the step per group.
#pragma once
#include <vector>

#include "engine/optim/optimizer.h"

namespace rv::optim {

struct LambOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weight_decay = 0.01;
  bool bias_correction = true;
  bool grad_averaging = true;
  bool trust_clip = false;
  bool always_adapt = false;
  // Global gradient-norm clip; 0 turns it off (timm: None). As in timm, the value of the
  // optimizer's defaults is used for all groups.
  double max_grad_norm = 1.0;

  template <class F>
  void fields(F&& f) {
    f("lr", lr), f("beta1", beta1), f("beta2", beta2), f("eps", eps), f("weight_decay", weight_decay),
        f("bias_correction", bias_correction), f("grad_averaging", grad_averaging), f("trust_clip", trust_clip),
        f("always_adapt", always_adapt), f("max_grad_norm", max_grad_norm);
  }
};

class Lamb : public OptimizerWith<LambOptions> {
 public:
  explicit Lamb(const std::vector<ParamGroup>& groups, const LambOptions& defaults = {})
      : OptimizerWith("Lamb", groups, defaults) {}
  void step() override;
  // The global gradient norm N measured by the last step() (0 before any; -1 when clipping is off).
  double last_grad_norm() const { return last_grad_norm_; }

 private:
  double last_grad_norm_ = 0.0;
  std::vector<unsigned char> scratch_;  // the update u of one parameter; reused across steps
};

}  // namespace rv::optim
