// schedule.cpp: the LR schedule (see schedule.h for the formulas).
#include "train/schedule.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace rv::train {

double LrSchedule::lr_at(int64_t step) const {
  if (step < 0) throw std::invalid_argument("LrSchedule::lr_at: step must be >= 0, got " + std::to_string(step));
  if (step < warmup_steps) return warmup_lr + (base_lr - warmup_lr) * double(step) / double(warmup_steps);
  if (name == "constant") return base_lr;
  if (name != "cosine" && name != "poly")
    throw std::invalid_argument("LrSchedule: unknown schedule '" + name + "' (cosine, constant or poly)");
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 0) return base_lr;  // the whole run is warmup
  const double t = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
  if (name == "poly") return min_lr + (base_lr - min_lr) * std::pow(1.0 - t, power);
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

int64_t steps_per_epoch(int64_t micro_batches_per_epoch, int64_t grad_accum) {
  if (grad_accum < 1) throw std::invalid_argument("steps_per_epoch: train.grad_accum must be >= 1");
  const int64_t steps = micro_batches_per_epoch / grad_accum;
  if (steps < 1)
    throw std::invalid_argument("steps_per_epoch: an epoch has " + std::to_string(micro_batches_per_epoch) +
                                " batches, fewer than train.grad_accum = " + std::to_string(grad_accum) +
                                " (no optimizer step would run); use a smaller batch or accumulation");
  return steps;
}

double lr_scale_factor(const config::TrainConfig& cfg, int64_t world_size) {
  if (cfg.optim.lr_scale == "none") return 1.0;
  if (cfg.optim.lr_scale != "linear")
    throw std::invalid_argument("optim.lr_scale: expected none or linear, got '" + cfg.optim.lr_scale + "'");
  const double global_batch = double(cfg.train.batch_size * cfg.train.grad_accum * world_size);
  return global_batch / double(cfg.optim.lr_base_batch);
}

LrSchedule make_schedule(const config::TrainConfig& cfg, int64_t steps_per_epoch, int64_t world_size) {
  const double f = lr_scale_factor(cfg, world_size);
  LrSchedule s;
  s.name = cfg.sched.name;
  s.power = cfg.sched.power;
  s.base_lr = cfg.optim.lr * f;
  s.warmup_lr = cfg.sched.warmup_lr * f;
  s.min_lr = cfg.sched.min_lr * f;
  s.total_steps = cfg.train.epochs * steps_per_epoch;
  s.warmup_steps = std::llround(cfg.sched.warmup_epochs * double(steps_per_epoch));
  if (s.warmup_steps > s.total_steps) s.warmup_steps = s.total_steps;
  return s;
}

LrSchedule make_schedule_iters(const config::TrainConfig& cfg, int64_t world_size) {
  if (cfg.train.iters <= 0)
    throw std::invalid_argument("make_schedule_iters: train.iters must be > 0, got " + std::to_string(cfg.train.iters));
  const double f = lr_scale_factor(cfg, world_size);
  LrSchedule s;
  s.name = cfg.sched.name;
  s.power = cfg.sched.power;
  s.base_lr = cfg.optim.lr * f;
  s.warmup_lr = cfg.sched.warmup_lr * f;
  s.min_lr = cfg.sched.min_lr * f;
  s.total_steps = cfg.train.iters;
  s.warmup_steps = std::min(cfg.sched.warmup_iters, cfg.train.iters);
  return s;
}

}  // namespace rv::train
