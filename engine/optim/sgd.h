// sgd.h: stochastic gradient descent with momentum, as torch.optim.SGD.
//
// Per parameter p with gradient g:
//   g  = g + weight_decay * p                     coupled (L2) weight decay
//   buf = g                          on the first step with momentum,
//   buf = momentum * buf + (1 - dampening) * g    afterwards
//   g  = nesterov ? g + momentum * buf : buf      (only when momentum != 0)
//   p -= lr * g
// State per parameter: step, momentum_buffer (when momentum != 0).
#pragma once
#include "engine/optim/optimizer.h"

namespace rv::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0

  template <class F>
  void fields(F&& f) {
    f("lr", lr), f("momentum", momentum), f("dampening", dampening), f("weight_decay", weight_decay),
        f("nesterov", nesterov);
  }
};

class SGD : public OptimizerWith<SGDOptions> {
 public:
  explicit SGD(const std::vector<ParamGroup>& groups, const SGDOptions& defaults = {})
      : OptimizerWith("SGD", groups, defaults) {}
  void step() override;
};

}  // namespace rv::optim
