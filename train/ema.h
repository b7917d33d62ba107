// ema.h: an exponential moving average of a model's weights (timm's ModelEmaV2), kept in a
// second model of the same config so it can be evaluated and saved like the first.
//
//   after each optimizer step, for every entry of the state dict (parameters and persistent
//   buffers):   float: ema = decay * ema + (1 - decay) * value    (in the tensor's dtype)
//               other: ema = value                                 (copied)
//
// As in ModelEmaV2, the state dict's float buffers are averaged with the weights: BatchNorm's
// running_mean / running_var (UperNet's heads) follow the same average, so the EMA model's
// statistics belong to its averaged weights; the integer num_batches_tracked is copied (timm
// writes the average into the integer tensor; BatchNorm with a fixed momentum never reads it).
//
// The averaged weights are what DeiT / timm report as "EMA" accuracy; with decay 0.9998 they
// average about the last 1 / (1 - decay) = 5000 steps. The EMA model stays in eval mode.
//
//   ModelEma                     a classifier (models::Model), used by the Trainer
//   ModuleEma<seg::UperNet>      any other module type (the segmenter, train/seg/seg_trainer.cpp)
// Both run ema_start / ema_update, which work on any nn::Module.
#pragma once
#include <memory>
#include <stdexcept>

#include "models/model.h"

namespace rv::train {

// `ema` becomes a copy of `model`'s state (same names and shapes, or it throws), in eval mode,
// its parameters frozen (no graph in its forward). decay must be in [0, 1).
void ema_start(nn::Module& ema, const nn::Module& model, double decay);
// One step of the average (see above).
void ema_update(nn::Module& ema, const nn::Module& model, double decay);

template <class M>
class ModuleEma {
 public:
  // `ema_model` is a fresh module of the same config as `model`; its weights become a copy of
  // model's.
  ModuleEma(std::shared_ptr<M> ema_model, const M& model, double decay) : ema_(std::move(ema_model)), decay_(decay) {
    if (!ema_) throw std::invalid_argument("ModelEma: no EMA model given");
    ema_start(*ema_, model, decay);
  }

  void update(const M& model) { ema_update(*ema_, model, decay_); }
  M& model() { return *ema_; }
  const M& model() const { return *ema_; }
  double decay() const { return decay_; }

 private:
  std::shared_ptr<M> ema_;
  double decay_;
};

using ModelEma = ModuleEma<models::Model>;

}  // namespace rv::train
