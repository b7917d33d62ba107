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
//        train.iters) x group multiplier (layer decay) -> [clip] -> optimizer step -> [EMA]
//   -> log -> [evaluation, best checkpoint] -> [recovery checkpoint]
// The loader restarts with the next epoch's order whenever an epoch ends (mmseg's
// InfiniteSampler), so an epoch here is only a position in the data order.
//
// Shared with the classification trainer: the run folder (run_dir.h), config.json, log.jsonl
// records {"kind": "train" | "val", "step", ...}, TensorBoard scalars (train/loss, train/lr,
// val/mIoU ...), checkpoints (checkpoint.h: checkpoints/last.safetensors at the end,
// recovery.safetensors every ckpt.recovery_steps), the schedule (schedule.h), make_optimizer.
// Resume (--resume auto | PATH) restores the weights, the optimizer moments, the step, the data
// position and the dropout generator, so the run continues the same sequence of batches.
// Evaluation during training: every eval.interval iterations and at the last one, the validation
// split whole-image and single-scale (seg_evaluate.h) -> a {"kind": "val", "step", "mode":
// "whole", "mIoU", "mAcc", "aAcc", ...} log record, TensorBoard val/mIoU, val/mAcc, val/aAcc, a
// summary.csv row (step, train_loss = mean step loss since the previous evaluation, mIoU, mAcc,
// aAcc, lr), and checkpoints/best.safetensors whenever ckpt.best_metric (mIoU, mAcc or aAcc)
// beats the best so far, as the classification trainer keeps its best epoch. It runs before the
// recovery checkpoint of the same step, so that file carries the new best.
// The end: checkpoints/last.safetensors, model.safetensors (weights), the final numbers with
// the configured inference (seg.mode whole or slide, seg.scales, seg.flip: evaluated again, with
// a "val" record of that mode, unless it is plain whole-image, which the last step's evaluation
// already is) into seg_eval.json / seg_eval.csv; the per-class table is printed.
//
// EMA (train.ema_decay > 0): a second UperNet averaged after every optimizer step (ema.h: as
// timm's ModelEmaV2, BatchNorm's float running statistics averaged with the weights), evaluated
// next to the model at every evaluation ("mIoU_ema", ... in the log, summary.csv and TensorBoard;
// the final numbers in seg_eval_ema.json / .csv), saved as ema.* in every checkpoint and
// restored on resume.
//
// Data-parallel (torchrun / mpirun / srun, a communicator of W > 1 ranks), as the classification
// trainer: rank 0's state broadcast at start, the training loader sharded by rank (padded to equal
// steps), gradients averaged (dist::GradientSync), losses averaged over ranks, evaluation sharded
// by image with the class areas summed (exact metrics), rank 0 alone writing files and printing,
// a barrier after each checkpoint. model.sync_bn (unset: true when W > 1) turns the UperNet's
// BatchNorm2d layers into nn::SyncBatchNorm on the same communicator, same state dict names.
//
// Device (train.device = cpu | cuda | auto, train_device.h, as the classification trainer): the
// UperNet (backbone, decode and auxiliary heads) and its EMA move to the device before the
// optimizer is made, so the AdamW moments live there too; each batch's images (f32) and label
// maps (u8) are copied from pinned memory without waiting, and the loss is computed there (only
// its value comes back). Evaluation runs on the model's device too; the per-class areas are
// counted on the host from the predicted class map (seg_evaluate.h). Checkpoints are written
// from the device tensors and loaded back into them on resume. cuda without a GPU (or a CPU-only
// build) is an error naming why; train.amp = bf16 is refused.
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
