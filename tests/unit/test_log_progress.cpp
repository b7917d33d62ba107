// The progress display: the status line and the timm-style plain line to the byte, durations,
// the ETA estimate, and the draw policy (terminal: at most every 0.1 s, always the last step;
// plain: first, every N-th and last step of an epoch) with the clock passed in.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "train/log/progress.h"

using namespace rv::runlog;

namespace {
ProgressState example() {
  ProgressState s;
  s.step = 3802;
  s.total_steps = 375300;
  s.epoch = 3;
  s.epoch_step = 50;
  s.steps_per_epoch = 1251;
  s.loss = 2.345678;
  s.loss_avg = 2.40149;
  s.lr = 1e-3;
  s.img_per_s = 566.371;
  s.data_ms = 3.14;
  s.step_ms = 452.04;
  s.eta_s = 5025;
  return s;
}
}  // namespace

TEST_CASE("progress: durations") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(7.4) == "0:07");
  CHECK(format_duration(754) == "12:34");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(3 * 86400 + 3723) == "3d 01:02:03");
  CHECK(format_duration(-1) == "--");
  CHECK(format_duration(NAN) == "--");
  CHECK(format_duration(INFINITY) == "--");
}

TEST_CASE("progress: the two line formats, to the byte") {
  ProgressState s = example();
  CHECK(format_tty_line(s) ==
        "step 3802/375300 (1.0%) | ep 3 | loss 2.346 | lr 1.00e-03 | 566.4 img/s | data 3.1 ms | step 452.0 ms | ETA 1:23:45");
  CHECK(format_plain_line(s) ==
        "Train: 3 [  50/1251 (  4%)]  Loss: 2.346 (2.401)  LR: 1.000e-03  566.4 img/s  Data: 3.1 ms  Step: 452.0 ms  ETA: 1:23:45");
  CHECK(format_tty_line(s, 20) == "step 3802/375300 (1.");
  s.loss = NAN;
  s.eta_s = -1;
  s.epoch_step = 1251;
  CHECK(format_plain_line(s) ==
        "Train: 3 [1251/1251 (100%)]  Loss: nan (2.401)  LR: 1.000e-03  566.4 img/s  Data: 3.1 ms  Step: 452.0 ms  ETA: --");
  s.bad_samples = 2;  // data.on_bad_sample = skip replaced some: shown, at the end
  CHECK(format_plain_line(s).ends_with("ETA: --  Bad samples: 2"));
  CHECK(format_tty_line(s).ends_with("ETA -- | bad 2"));
  ProgressState empty;  // zero totals: no division by zero
  CHECK(format_tty_line(empty).starts_with("step 0/0 (0.0%)"));
  CHECK(format_plain_line(empty).starts_with("Train: 0 [0/0 (  0%)]"));
}

TEST_CASE("progress: ETA from the recent pace") {
  EtaEstimator eta(4);
  CHECK(eta.eta(100) == -1);
  eta.add(10, 0.0);
  CHECK(eta.eta(100) == -1);
  eta.add(11, 1.0);
  CHECK(eta.eta(100) == doctest::Approx(89.0));
  for (int s = 12; s <= 20; ++s) eta.add(s, 1.0 + 0.5 * (s - 11));  // sped up to 0.5 s/step
  CHECK(eta.eta(100) == doctest::Approx(40.0));                     // the window forgot the slow step
  eta.add(5, 100.0);  // the step went back (a restart): the old samples are dropped
  CHECK(eta.eta(100) == -1);
}

TEST_CASE("progress: terminal mode redraws in place at most every 0.1 s, and always the last step") {
  std::ostringstream out;
  ProgressDisplay d(out, /*terminal=*/true, {.plain_every = 50, .min_redraw_s = 0.1, .width = 200});
  ProgressState s = example();
  s.total_steps = 100;
  s.steps_per_epoch = 100;
  int drawn = 0;
  for (int i = 1; i <= 100; ++i) {  // 100 steps, 10 ms apart: 1 s in all
    s.step = s.epoch_step = i;
    drawn += d.update(s, 0.01 * i);
  }
  CHECK(drawn >= 10);
  CHECK(drawn <= 12);
  std::string text = out.str();
  CHECK(std::count(text.begin(), text.end(), '\r') == drawn);
  CHECK(text.find('\n') == std::string::npos);  // all on one line
  CHECK(text.rfind("\rstep 100/100 (100.0%)", 0) == std::string::npos);
  CHECK(text.find("step 100/100 (100.0%)") != std::string::npos);
  d.message("Eval: top1 61.2");
  CHECK(out.str().ends_with("\r\x1b[KEval: top1 61.2\n" + format_tty_line(s, 199)));
  d.finish();
  CHECK(out.str().back() == '\n');
}

TEST_CASE("progress: plain mode prints the first, every N-th and the last step of each epoch") {
  std::ostringstream out;
  ProgressDisplay d(out, /*terminal=*/false, {.plain_every = 50, .min_redraw_s = 0.1, .width = 0});
  ProgressState s = example();
  s.steps_per_epoch = 120;
  s.total_steps = 240;
  s.eta_s = -1;  // left to the display's estimator
  std::vector<int64_t> printed;
  for (int i = 1; i <= 240; ++i) {
    s.step = i;
    s.epoch = (i - 1) / 120;
    s.epoch_step = (i - 1) % 120 + 1;
    if (d.update(s, 0.001 * i)) printed.push_back(i);
  }
  CHECK(printed == std::vector<int64_t>{1, 50, 100, 120, 121, 170, 220, 240});
  std::string text = out.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 8);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find("Train: 1 [ 50/120 ( 42%)]") != std::string::npos);
  CHECK(text.find("ETA: --\n") != std::string::npos);  // the first step: no pace yet
  CHECK(text.find("ETA: 0:00\n") != std::string::npos);  // then filled in by the estimator (1 ms/step)
}
