// progress.h: the training progress display.
//
// On a terminal (stderr is a tty) one status line, redrawn in place at most ~10 times a second:
//   step 1234/100000 (1.2%) | ep 3 | loss 2.346 | lr 1.00e-03 | 512.3 img/s | data 3.1 ms | step 45.2 ms | ETA 1:23:45
// Otherwise (a log file, a batch job) plain lines every `plain_every` steps, timm-style:
//   Train: 3 [  50/1251 (  4%)]  Loss: 2.346 (2.401)  LR: 1.000e-03  512.3 img/s  Data: 3.1 ms  Step: 45.2 ms  ETA: 1:23:45
// The formatting is pure functions (tested to the byte); ProgressDisplay only decides when to
// draw, and takes the time as an argument so its policy is testable without sleeping.
#pragma once
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <string>

namespace rv::runlog {

struct ProgressState {
  int64_t step = 0;             // optimizer steps done in the whole run (1 after the first)
  int64_t total_steps = 0;
  int64_t epoch = 0;            // 0-based, as timm prints it
  int64_t epoch_step = 0;       // steps done in this epoch (1..steps_per_epoch)
  int64_t steps_per_epoch = 0;
  double loss = 0, loss_avg = 0;  // the last step's loss and the epoch's running mean
  double lr = 0;
  double img_per_s = 0;
  double data_ms = 0, step_ms = 0;  // time waiting for the batch / for the whole step
  double eta_s = -1;                // remaining seconds; < 0: unknown (printed as "--")
  int64_t bad_samples = 0;          // samples skipped this epoch (data.on_bad_sample = skip); shown when > 0
};

std::string format_duration(double seconds);  // "0:07", "12:34", "1:02:03", "3d 01:02:03"; "--" if < 0 or not finite
std::string format_tty_line(const ProgressState& s, size_t width = 0);  // cut to `width` columns if > 0
std::string format_plain_line(const ProgressState& s);

// Seconds left, from the pace of the last `window` updates (a sliding window follows speed
// changes, e.g. after the first slow steps, better than the run's mean).
class EtaEstimator {
 public:
  explicit EtaEstimator(size_t window = 50) : window_(window) {}
  void add(int64_t step, double now_s);
  double eta(int64_t total_steps) const;  // -1 until two distinct samples exist

 private:
  size_t window_;
  std::deque<std::pair<int64_t, double>> samples_;
};

struct ProgressOptions {
  int64_t plain_every = 50;    // plain mode: a line every N steps of an epoch (and its first and last)
  double min_redraw_s = 0.1;   // terminal mode: at most 10 redraws a second
  size_t width = 0;            // terminal columns; 0: ask the terminal (80 if it does not say)
};

class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, bool terminal, ProgressOptions options = {});
  static bool stderr_is_terminal();  // isatty(STDERR_FILENO)

  // Draws (or not) for this step. now_s: a monotonic clock in seconds. Fills state.eta_s from
  // its estimator when the caller left it < 0. Returns whether something was written.
  bool update(ProgressState state, double now_s);
  bool update(const ProgressState& state);  // now = steady_clock
  // A line of its own (an eval result, a warning), printed above the status line.
  void message(const std::string& line);
  void finish();  // ends the status line with a newline (terminal mode)

 private:
  std::ostream& out_;
  bool terminal_;
  ProgressOptions opt_;
  EtaEstimator eta_;
  double last_draw_s_ = -1e300;
  std::string last_line_;  // drawn status line, redrawn after a message
};

}  // namespace rv::runlog
