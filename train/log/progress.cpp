// progress.cpp: formatting of the status line and the draw policy.
#include "train/log/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace rv::runlog {

namespace {
template <typename... A>
std::string fmt(const char* f, A... a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}
int digits(int64_t v) { return int(std::to_string(v < 0 ? -v : v).size()); }
}  // namespace

std::string format_duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "--";
  auto t = int64_t(std::llround(s));
  int64_t d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
  if (d > 0) return fmt("%lldd %02lld:%02lld:%02lld", (long long)d, (long long)h, (long long)m, (long long)sec);
  if (h > 0) return fmt("%lld:%02lld:%02lld", (long long)h, (long long)m, (long long)sec);
  return fmt("%lld:%02lld", (long long)m, (long long)sec);
}

std::string format_tty_line(const ProgressState& s, size_t width) {
  double pct = s.total_steps > 0 ? 100.0 * double(s.step) / double(s.total_steps) : 0.0;
  std::string line = fmt("step %lld/%lld (%.1f%%) | ep %lld | loss %.4g | lr %.2e | %.1f img/s | data %.1f ms | step %.1f ms | ETA %s",
                         (long long)s.step, (long long)s.total_steps, pct, (long long)s.epoch, s.loss, s.lr,
                         s.img_per_s, s.data_ms, s.step_ms, format_duration(s.eta_s).c_str());
  if (s.bad_samples > 0) line += fmt(" | bad %lld", (long long)s.bad_samples);
  // A line longer than the terminal wraps, and "\r" then redraws only its last part.
  if (width > 0 && line.size() > width) line.resize(width);
  return line;
}

std::string format_plain_line(const ProgressState& s) {
  double pct = s.steps_per_epoch > 0 ? 100.0 * double(s.epoch_step) / double(s.steps_per_epoch) : 0.0;
  std::string line =
      fmt("Train: %lld [%*lld/%lld (%3.0f%%)]  Loss: %.4g (%.4g)  LR: %.3e  %.1f img/s  Data: %.1f ms  Step: %.1f ms  ETA: %s",
          (long long)s.epoch, digits(s.steps_per_epoch), (long long)s.epoch_step, (long long)s.steps_per_epoch, pct,
          s.loss, s.loss_avg, s.lr, s.img_per_s, s.data_ms, s.step_ms, format_duration(s.eta_s).c_str());
  if (s.bad_samples > 0) line += fmt("  Bad samples: %lld", (long long)s.bad_samples);
  return line;
}

void EtaEstimator::add(int64_t step, double now_s) {
  if (!samples_.empty() && step <= samples_.back().first) samples_.clear();  // a restart: forget the old pace
  samples_.emplace_back(step, now_s);
  while (samples_.size() > window_) samples_.pop_front();
}

double EtaEstimator::eta(int64_t total_steps) const {
  if (samples_.size() < 2) return -1;
  const auto& [s0, t0] = samples_.front();
  const auto& [s1, t1] = samples_.back();
  if (t1 <= t0) return -1;
  double sec_per_step = (t1 - t0) / double(s1 - s0);
  return double(std::max<int64_t>(total_steps - s1, 0)) * sec_per_step;
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool terminal, ProgressOptions options)
    : out_(out), terminal_(terminal), opt_(options) {
  if (terminal_ && opt_.width == 0) {
    winsize ws{};
    opt_.width = (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 80;
  }
}

bool ProgressDisplay::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

bool ProgressDisplay::update(ProgressState s, double now_s) {
  eta_.add(s.step, now_s);
  if (s.eta_s < 0) s.eta_s = eta_.eta(s.total_steps);
  bool last = s.step == s.total_steps || s.epoch_step == s.steps_per_epoch;
  if (terminal_) {
    if (!last && now_s - last_draw_s_ < opt_.min_redraw_s) return false;
    last_line_ = format_tty_line(s, opt_.width > 1 ? opt_.width - 1 : 0);  // keep the cursor off the last column
    out_ << '\r' << last_line_ << "\x1b[K" << std::flush;  // ESC[K: erase what a longer line left
  } else {
    bool due = s.epoch_step == 1 || last || (opt_.plain_every > 0 && s.epoch_step % opt_.plain_every == 0);
    if (!due) return false;
    out_ << format_plain_line(s) << '\n' << std::flush;
  }
  last_draw_s_ = now_s;
  return true;
}

bool ProgressDisplay::update(const ProgressState& s) {
  return update(s, std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void ProgressDisplay::message(const std::string& line) {
  if (terminal_) {
    out_ << "\r\x1b[K" << line << '\n';
    if (!last_line_.empty()) out_ << last_line_;
  } else {
    out_ << line << '\n';
  }
  out_ << std::flush;
}

void ProgressDisplay::finish() {
  if (terminal_ && !last_line_.empty()) out_ << '\n' << std::flush;
  last_line_.clear();
}

}  // namespace rv::runlog
