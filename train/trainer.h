// trainer.h: the training loop of `ropevit train`, from a resolved config to a run folder.
//
//   Trainer t(resolved_config, plan);   // builds model, EMA, data, optimizer; resumes if planned
//   t.fit();                            // epochs of steps, evaluation, checkpoints, logs, plots
//
// One optimizer step (train.grad_accum = k micro-batches):
//   for each micro-batch: [Mixup/CutMix] -> forward -> loss (criterion.h) -> check finite
//                         -> backward of loss / k           (gradients add up over the k)
//   lr = schedule(step) * group multiplier (layer decay)  -> [clip grad norm] -> optimizer step
//   -> zero grads -> EMA update -> step + 1 -> log -> [recovery checkpoint]
// End of an epoch: evaluate (model and EMA) every eval.interval epochs and at the last, a
// summary.csv row, checkpoints last / best / every N epochs. End of the run: the resolution
// sweep (eval.img_sizes), model.safetensors, the plots.
//
// Exact resume: everything a step depends on is either stored in the checkpoint (weights, EMA,
// optimizer moments and step counts, the dropout generator's offset, the loader position as
// epoch + micro-batches done) or a pure function of (seed, epoch, batch) (the data order and
// augmentation, data/loader.h; the Mixup draw, a generator per batch; the LR, a function of
// the step). So a run killed anywhere and resumed from its last checkpoint computes the same
// losses, bit for bit on the CPU with the same thread count (tests/integration/test_train_cli.cpp).
//
// Data-parallel (train/distributed/): every rank runs this loop on its share of each batch
// (train.batch_size images per rank; global batch = batch_size x grad_accum x world size).
// Rank 0's weights are broadcast at start; gradients are averaged over the ranks in buckets
// sent during the last micro-step's backward (dist.overlap) and completed right after it
// (grad_sync.h), before clipping and the optimizer, so every rank
// takes the same step. The logged loss is the global mean; evaluation shards the data without
// padding and sums the counts. Rank 0 alone writes the run folder; every rank waits at a
// barrier after each checkpoint. Checkpoints store the loader position as samples of the epoch
// (global), so a run resumes on any world size whose global batch divides it.
//
// A NaN or Inf loss (or gradient norm, when clipping) stops the run naming the step, the value
// and the last good checkpoint (train.nan_policy = stop), or skips the update (skip): counted,
// logged ({"kind": "train", "skipped": true, ...}) and kept in checkpoints.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "train/config/resolve.h"
#include "train/distributed/communicator.h"
#include "train/run_dir.h"

namespace rv::train {

struct TrainSummary {
  int64_t steps = 0;
  double last_loss = 0.0;
  double best_metric = 0.0;
  int64_t nan_skipped = 0;
  double img_per_s = 0.0;  // training throughput of all ranks together (steps after the first)
};

class Trainer {
 public:
  // comm: the ranks of a data-parallel run (nullptr: this process alone).
  Trainer(const config::ResolvedConfig& rc, const RunPlan& plan, std::shared_ptr<dist::Communicator> comm = nullptr);
  ~Trainer();
  TrainSummary fit();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace rv::train
