// seg_trainer.h: the training loop of `ropevit train` for task = segmentation: UperNet on an
// ADE20k-layout set, counted in iterations as mmseg counts them.
//
//   SegTrainer t(resolved_config, plan);   // UperNet, loader, AdamW (+ layer decay), schedule
//   TrainSummary s = t.fit();              // train.iters steps, checkpoints, then evaluation
//
// One optimizer step (train.grad_accum = k micro-batches of train.batch_size crops):
//   for each micro-batch: images (B, 3, S, S), label maps (B, S, S) u8
//     -> UperNet::loss: decode CE + seg.aux_weight x auxiliary FCN CE (ignore 255, mmseg's
//        averaging, models/seg/seg_loss.h) -> check finite -> backward of total / k
//   lr = schedule(step) (linear warmup sched.warmup_iters, then sched.name, usually poly to
//        train.iters) x group multiplier (layer decay) -> [clip] -> optimizer step
// The loader restarts with the next epoch's order whenever an epoch ends (mmseg's
// InfiniteSampler), so an epoch here is only a position in the data order.
//
// Shared with the classification trainer: the run folder (run_dir.h), config.json, log.jsonl
// records {"kind": "train" | "val", "step", ...}, TensorBoard scalars (train/loss, train/lr,
// val/mIoU ...), checkpoints (checkpoint.h: checkpoints/last.safetensors at the end,
// recovery.safetensors every ckpt.recovery_steps), the schedule (schedule.h), make_optimizer.
// Resume (--resume auto | PATH) restores the weights, the optimizer moments, the step, the data
// position and the dropout generator, so the run continues the same sequence of batches.
// The end: model.safetensors (weights), evaluation on data.val_split (seg_evaluate.h: mIoU /
// mAcc / aAcc, seg.mode whole or slide, seg.scales, seg.flip) into seg_eval.json / seg_eval.csv
// and a "val" log record; the per-class table is printed.
//
// Not here yet: CUDA (train.device = cuda throws), data-parallel ranks (world size > 1 throws),
// EMA, evaluation during training (mmseg evaluates every 16k iterations; here at the end only).
#pragma once
#include <memory>

#include "train/config/resolve.h"
#include "train/distributed/communicator.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace rv::train::seg {

class SegTrainer {
 public:
  SegTrainer(const config::ResolvedConfig& rc, const RunPlan& plan,
             std::shared_ptr<dist::Communicator> comm = nullptr);
  ~SegTrainer();
  TrainSummary fit();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace rv::train::seg
