// evaluate.h: exact evaluation of a classifier: every sample of the loader's data set once
// (the loader must not shuffle, drop or pad), top-1 / top-5 as integer counts and the mean
// cross-entropy, in eval mode without building a graph.
#pragma once
#include <cstdint>

#include "data/loader.h"
#include "data/metrics/accuracy.h"
#include "models/model.h"

namespace rv::train {

struct EvalResult {
  data::AccuracyCounts counts;
  double loss_sum = 0.0;  // summed cross-entropy (f64, in sample order)
  double top1() const { return 100.0 * counts.top1_fraction(); }  // percent, as timm prints
  double top5() const { return 100.0 * counts.top5_fraction(); }
  double loss() const { return loss_sum / double(counts.total); }
};

// Runs `model` over one epoch of `loader` (epoch 0). The model's training mode is restored.
EvalResult evaluate(models::Model& model, data::Loader& loader);

}  // namespace rv::train
