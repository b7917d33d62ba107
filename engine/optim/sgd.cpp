// sgd.cpp: the SGD update loop (see sgd.h). One pass per parameter over raw pointers; the
// scalars are rounded once to the parameter's type as torch does.
#include "engine/optim/sgd.h"

#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/parallel.h"

namespace rv::optim {

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const SGDOptions& o = options_[gi];
    detail::check_range("SGD", "lr", o.lr, 0.0, INFINITY);
    detail::check_range("SGD", "momentum", o.momentum, 0.0, INFINITY);
    detail::check_range("SGD", "weight_decay", o.weight_decay, 0.0, INFINITY);
    if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
      throw std::invalid_argument("SGD: nesterov momentum needs momentum > 0 and dampening = 0 (group " +
                                  std::to_string(gi) + ")");
    Group& group = groups_[gi];
    for (size_t i = 0; i < group.params.size(); ++i) {
      Tensor& p = group.params[i];
      Tensor g = detail::dense_grad(p, "SGD", param_label(gi, i));
      if (!g.defined()) continue;
      ParamState& st = group.state[i];
      const bool use_momentum = o.momentum != 0.0;
      const bool first = use_momentum && !st.buffers.count("momentum_buffer");
      Tensor buf = use_momentum ? detail::state_buffer(st.buffers, "momentum_buffer", p) : Tensor();
      autograd::check_inplace(p, "SGD.step");
      st.step += 1;
      cpu::dispatch_float(p.dtype(), "SGD", [&]<class T>() {
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* bp = use_momentum ? buf.data<T>() : nullptr;
        const T wd = T(o.weight_decay), mom = T(o.momentum), keep = T(1.0 - o.dampening), neg_lr = T(-o.lr);
        const bool decay = o.weight_decay != 0.0, nesterov = o.nesterov;
        cpu::parallel_for(p.numel(), 16384, [&](int64_t b, int64_t e) {
          for (int64_t k = b; k < e; ++k) {
            T gk = decay ? gp[k] + wd * pp[k] : gp[k];
            if (bp) {
              T bk = first ? gk : bp[k] * mom + keep * gk;
              bp[k] = bk;
              gk = nesterov ? gk + mom * bk : bk;
            }
            pp[k] = pp[k] + neg_lr * gk;
          }
        });
      });
    }
  }
}

}  // namespace rv::optim
