// test_schedule.cpp: the LR schedule (train/schedule.h): warmup, cosine, constant, the minimum,
// steps per epoch under gradient accumulation, and the linear LR scaling rule.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "train/schedule.h"

using namespace rv;

namespace {

config::TrainConfig base_config() {
  config::TrainConfig c;
  c.optim.lr = 1e-3;
  c.sched.name = "cosine";
  c.sched.warmup_epochs = 0.5;
  c.sched.warmup_lr = 1e-5;
  c.sched.min_lr = 1e-5;
  c.train.epochs = 3;
  c.train.batch_size = 128;
  c.train.grad_accum = 1;
  return c;
}

}  // namespace

TEST_CASE("schedule: linear warmup, then cosine from base to min, per step") {
  // 10 steps per epoch, 3 epochs: W = 5 warmup steps, T = 30 steps.
  const train::LrSchedule s = train::make_schedule(base_config(), 10);
  CHECK(s.warmup_steps == 5);
  CHECK(s.total_steps == 30);
  CHECK(s.lr_at(0) == doctest::Approx(1e-5).epsilon(1e-12));                          // warmup_lr
  CHECK(s.lr_at(2) == doctest::Approx(1e-5 + (1e-3 - 1e-5) * 2 / 5).epsilon(1e-12));  // 40% of the way
  CHECK(s.lr_at(5) == doctest::Approx(1e-3).epsilon(1e-12));                          // base at the end of warmup
  const double at15 = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(std::numbers::pi * 10.0 / 25.0));
  CHECK(s.lr_at(15) == doctest::Approx(at15).epsilon(1e-12));  // 10 of the 25 decay steps
  const double last = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(std::numbers::pi * 24.0 / 25.0));
  CHECK(s.lr_at(29) == doctest::Approx(last).epsilon(1e-12));  // just above min at the last step
  CHECK(s.lr_at(30) == doctest::Approx(1e-5).epsilon(1e-12));  // min one step past the run
  CHECK(s.lr_at(1000) == doctest::Approx(1e-5).epsilon(1e-12));
  for (int64_t i = 5; i < 29; ++i) CHECK(s.lr_at(i + 1) < s.lr_at(i));  // decreasing after warmup
  config::TrainConfig c = base_config();
  c.sched.warmup_epochs = 0.6;  // W = 6, so the 24 decay steps have a middle: step 18
  CHECK(train::make_schedule(c, 10).lr_at(18) == doctest::Approx(1e-5 + (1e-3 - 1e-5) * 0.5).epsilon(1e-12));
  for (int64_t i = 0; i < 5; ++i) CHECK(s.lr_at(i + 1) > s.lr_at(i));   // increasing during warmup
  CHECK_THROWS_WITH_AS(s.lr_at(-1), doctest::Contains("step must be >= 0"), std::invalid_argument);
}

TEST_CASE("schedule: constant after warmup; no warmup; warmup rounded to whole steps") {
  config::TrainConfig c = base_config();
  c.sched.name = "constant";
  train::LrSchedule s = train::make_schedule(c, 10);
  CHECK(s.lr_at(5) == 1e-3);
  CHECK(s.lr_at(29) == 1e-3);
  c.sched.name = "cosine";
  c.sched.warmup_epochs = 0;
  s = train::make_schedule(c, 10);
  CHECK(s.warmup_steps == 0);
  CHECK(s.lr_at(0) == doctest::Approx(1e-3).epsilon(1e-12));  // starts at base
  c.sched.warmup_epochs = 0.25;                                // 2.5 steps -> 3
  CHECK(train::make_schedule(c, 10).warmup_steps == 3);
  c.sched.warmup_epochs = 5;  // longer than the run: all warmup, capped at T
  s = train::make_schedule(c, 10);
  CHECK(s.warmup_steps == 30);
  CHECK(s.lr_at(15) == doctest::Approx(1e-5 + (1e-3 - 1e-5) * 0.5).epsilon(1e-12));
}

TEST_CASE("schedule: steps are optimizer steps under gradient accumulation") {
  CHECK(train::steps_per_epoch(100, 1) == 100);
  CHECK(train::steps_per_epoch(100, 4) == 25);
  CHECK(train::steps_per_epoch(103, 4) == 25);  // the 3 left over cannot make a step
  CHECK_THROWS_WITH_AS(train::steps_per_epoch(3, 4), doctest::Contains("fewer than train.grad_accum"),
                       std::invalid_argument);
  config::TrainConfig c = base_config();
  c.train.grad_accum = 4;
  const train::LrSchedule s = train::make_schedule(c, train::steps_per_epoch(40, 4));  // 10 steps per epoch
  CHECK(s.total_steps == 30);
  CHECK(s.warmup_steps == 5);
}

TEST_CASE("schedule: the linear LR scaling rule scales base, warmup and min LR by the global batch") {
  config::TrainConfig c = base_config();
  CHECK(train::lr_scale_factor(c, 1) == 1.0);  // none
  c.optim.lr_scale = "linear";
  c.optim.lr_base_batch = 512;
  c.train.grad_accum = 2;
  CHECK(train::lr_scale_factor(c, 1) == 0.5);  // 128 * 2 / 512
  CHECK(train::lr_scale_factor(c, 4) == 2.0);  // 4 ranks
  const train::LrSchedule s = train::make_schedule(c, 10, 1);
  CHECK(s.base_lr == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(s.warmup_lr == doctest::Approx(5e-6).epsilon(1e-12));
  CHECK(s.min_lr == doctest::Approx(5e-6).epsilon(1e-12));
  c.optim.lr_scale = "sqrt";
  CHECK_THROWS_WITH_AS(train::lr_scale_factor(c, 1), doctest::Contains("optim.lr_scale"), std::invalid_argument);
}

TEST_CASE("schedule: poly (mmseg's PolyLR) after a warmup counted in iterations (train.iters)") {
  // mmseg's ADE20k schedule scaled down: warmup 15 of 160 iterations, poly to eta_min 0.
  config::TrainConfig c = base_config();
  c.sched.name = "poly";
  c.sched.warmup_epochs = 0;
  c.sched.warmup_iters = 15;
  c.sched.warmup_lr = 1e-3 * 1e-6;  // LinearLR start_factor 1e-6
  c.sched.min_lr = 0.0;
  c.train.iters = 160;
  const train::LrSchedule s = train::make_schedule_iters(c);
  CHECK(s.total_steps == 160);
  CHECK(s.warmup_steps == 15);
  CHECK(s.lr_at(0) == doctest::Approx(1e-9).epsilon(1e-12));
  CHECK(s.lr_at(5) == doctest::Approx(1e-9 + (1e-3 - 1e-9) * 5.0 / 15.0).epsilon(1e-12));
  CHECK(s.lr_at(15) == doctest::Approx(1e-3).epsilon(1e-12));
  // power 1: a straight line from base at step W to 0 at step T (145 decay steps).
  for (int64_t i : {16, 50, 100, 159})
    CHECK(s.lr_at(i) == doctest::Approx(1e-3 * (1.0 - double(i - 15) / 145.0)).epsilon(1e-12));
  CHECK(s.lr_at(160) == 0.0);
  CHECK(s.lr_at(500) == 0.0);  // past the end: eta_min, never negative
  // power 0.9 and a floor: min + (base - min) * (1 - t)^0.9.
  c.sched.power = 0.9;
  c.sched.min_lr = 1e-5;
  const train::LrSchedule p = train::make_schedule_iters(c);
  CHECK(p.lr_at(87) == doctest::Approx(1e-5 + (1e-3 - 1e-5) * std::pow(1.0 - 72.0 / 145.0, 0.9)).epsilon(1e-12));
  for (int64_t i = 15; i < 159; ++i) CHECK(p.lr_at(i + 1) < p.lr_at(i));
  // Iterations do not depend on epochs or steps per epoch; warmup longer than the run is cut.
  c.train.epochs = 1;
  c.sched.warmup_iters = 500;
  CHECK(train::make_schedule_iters(c).warmup_steps == 160);
  c.train.iters = 0;
  CHECK_THROWS_WITH_AS(train::make_schedule_iters(c), doctest::Contains("train.iters must be > 0"),
                       std::invalid_argument);
  // The linear scaling rule applies as for epochs.
  c.train.iters = 160;
  c.optim.lr_scale = "linear";
  c.optim.lr_base_batch = 64;
  CHECK(train::make_schedule_iters(c).base_lr == doctest::Approx(2e-3).epsilon(1e-12));
}
