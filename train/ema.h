// ema.h: an exponential moving average of a model's weights (timm's ModelEmaV2), kept in a
// second model of the same config so it can be evaluated and saved like the first.
//
//   after each optimizer step, for every entry of the state dict (parameters and persistent
//   buffers):   float: ema = decay * ema + (1 - decay) * value    (in the tensor's dtype)
//               other: ema = value                                 (copied)
//
// The averaged weights are what DeiT / timm report as "EMA" accuracy; with decay 0.9998 they
// average about the last 1 / (1 - decay) = 5000 steps. The EMA model stays in eval mode.
#pragma once
#include <memory>

#include "models/model.h"

namespace rv::train {

class ModelEma {
 public:
  // `ema_model` is a fresh model of the same config as `model`; its weights become a copy of
  // model's. decay in [0, 1).
  ModelEma(std::shared_ptr<models::Model> ema_model, const models::Model& model, double decay);

  void update(const models::Model& model);  // one step of the average (see above)
  models::Model& model() { return *ema_; }
  const models::Model& model() const { return *ema_; }
  double decay() const { return decay_; }

 private:
  std::shared_ptr<models::Model> ema_;
  double decay_;
};

}  // namespace rv::train
