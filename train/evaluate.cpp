// evaluate.cpp: one pass over an evaluation loader (see evaluate.h).
#include "train/evaluate.h"

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/loss.h"

namespace rv::train {

EvalResult evaluate(models::Model& model, data::Loader& loader) {
  const auto& o = loader.options();
  if (o.shuffle || o.drop_last || o.pad_to_equal || o.repeated_augment > 1)
    throw std::invalid_argument("evaluate: the loader must visit every sample once (no shuffle, drop_last, padding "
                                "or repeated augmentation)");
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  EvalResult r;
  loader.start_epoch(0);
  // The model's device: batches go there; the logits come back for the metrics (B x K floats).
  const std::vector<Tensor> params = model.parameters();
  const Device dev = params.empty() ? cpu_device() : params.front().device();
  while (auto batch = loader.next()) {
    const Tensor logits = model.forward(batch->images.to(dev, /*non_blocking=*/true)).cpu();  // (B, K)
    r.counts += data::accuracy_counts(logits, batch->labels);
    r.loss_sum += cross_entropy(logits, batch->labels, {.reduction = Reduction::sum}).item();
  }
  model.train(was_training);
  return r;
}

}  // namespace rv::train
