// ema.cpp: the weight EMA update (see ema.h).
#include "train/ema.h"

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/elementwise.h"

namespace rv::train {
namespace {

// ema[i] = d * ema[i] + (1 - d) * x[i] over n contiguous elements, in T.
template <class T>
void average(T* ema, const T* x, int64_t n, double decay) {
  const T d = T(decay), w = T(1.0 - decay);
  cpu::parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) ema[i] = d * ema[i] + w * x[i];
  });
}

}  // namespace

void ema_start(nn::Module& ema, const nn::Module& model, double decay) {
  if (!(decay >= 0.0 && decay < 1.0))
    throw std::invalid_argument("ModelEma: train.ema_decay must be in [0, 1), got " + std::to_string(decay));
  ema.load_state_dict(model.state_dict());  // a copy: same names and shapes, or it throws
  ema.eval();
  for (auto p : ema.parameters()) p.requires_grad_(false);  // never trained: no graph in its forward
}

void ema_update(nn::Module& ema, const nn::Module& model, double decay) {
  autograd::NoGradGuard no_grad;
  const nn::StateDict src = model.state_dict(), dst = ema.state_dict();
  for (const auto& [name, e] : dst) {
    const Tensor x = src.at(name).contiguous();
    if (!e.is_contiguous()) throw std::runtime_error("ModelEma: EMA tensor '" + name + "' is not contiguous");
    if (!e.device().is_cpu() && is_floating(e.dtype())) {
      // On a GPU: e = decay * e + (1 - decay) * x with the device's broadcast ops.
      Tensor(e).copy_(add(mul(e, full({}, decay, e.dtype(), e.device())),
                          mul(x, full({}, 1.0 - decay, e.dtype(), e.device()))));
    } else if (e.dtype() == DType::f32)
      average(e.data<float>(), x.data<float>(), e.numel(), decay);
    else if (e.dtype() == DType::f64)
      average(e.data<double>(), x.data<double>(), e.numel(), decay);
    else
      Tensor(e).copy_(x);  // integer buffers (counters) follow the model
  }
}

}  // namespace rv::train
