// schedule.h: the learning rate of every optimizer step: linear warmup, then cosine decay to a
// minimum (or constant), as timm's CosineLRScheduler with t_in_epochs=False (per step).
//
//   step s = optimizer updates done before this one (0 for the first update)
//   s <  W:  lr = warmup_lr + (base_lr - warmup_lr) * s / W                   linear warmup
//   s >= W:  lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (s - W) / (T - W))) / 2   cosine
//            lr = base_lr                                                       constant
//            lr = min_lr + (base_lr - min_lr) * (1 - (s - W) / (T - W))^power   poly (mmseg's PolyLR,
//                 begin = W, end = T, eta_min = min_lr: its recursive form has this closed form)
// with W = warmup steps and T = total steps. The last update (s = T - 1) is just above min_lr;
// min_lr itself would be reached at s = T, one step past the run.
//
// Steps are OPTIMIZER steps: with train.grad_accum = k, k micro-batches make one step, so an
// epoch of M micro-batches has M / k steps (the last M % k micro-batches are not used: they
// could not make a whole step). Warmup epochs convert to steps by rounding to the nearest step.
//
// Iteration-counted runs (train.iters > 0, mmseg's segmentation recipes): T = train.iters and
// W = sched.warmup_iters, both in optimizer steps; epochs play no part (make_schedule_iters).
//
// The schedule is a pure function of the step, so a resumed run needs only the step count.
#pragma once
#include <cstdint>
#include <string>

#include "train/config/train_config.h"

namespace rv::train {

struct LrSchedule {
  std::string name = "cosine";  // cosine | constant | poly
  double power = 1.0;           // poly only
  double base_lr = 1e-3, warmup_lr = 0.0, min_lr = 0.0;
  int64_t warmup_steps = 0, total_steps = 1;

  double lr_at(int64_t step) const;  // step in [0, total_steps); later steps give the last value's rule
};

// Optimizer steps per epoch from micro-batches per epoch and the accumulation count (>= 1).
int64_t steps_per_epoch(int64_t micro_batches_per_epoch, int64_t grad_accum);

// optim.lr_scale = linear: global batch / optim.lr_base_batch, where the global batch is
// train.batch_size * train.grad_accum * world_size (images per optimizer step); none: 1.
double lr_scale_factor(const config::TrainConfig& cfg, int64_t world_size);

// The schedule of a run from its config (sched.*, optim.lr and the LR scaling rule).
LrSchedule make_schedule(const config::TrainConfig& cfg, int64_t steps_per_epoch, int64_t world_size = 1);

// The schedule of an iteration-counted run (train.iters > 0): T = train.iters, W = sched.warmup_iters.
LrSchedule make_schedule_iters(const config::TrainConfig& cfg, int64_t world_size = 1);

}  // namespace rv::train
