// ticks.cpp: nice steps and tick labels.
#include "train/log/ticks.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace rv::runlog {

namespace {
// The smallest of {1, 2, 5, 10} x 10^k that is >= x.
double nice_step_at_least(double x) {
  double p = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}
}  // namespace

Ticks nice_ticks(double lo, double hi, int target, bool widen) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    throw std::invalid_argument("nice_ticks: the range must be finite, got [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  Ticks t;
  t.step = nice_step_at_least((hi - lo) / std::max(target - 1, 1));
  // A small tolerance so a bound that sits on a tick up to rounding counts as on it.
  const double eps = t.step * 1e-9;
  if (widen) {
    lo = std::floor((lo + eps) / t.step) * t.step;
    hi = std::ceil((hi - eps) / t.step) * t.step;
  }
  t.lo = lo, t.hi = hi;
  for (double k = std::ceil((lo - eps) / t.step); k * t.step <= hi + eps; k += 1) {
    double v = k * t.step;
    t.values.push_back(std::abs(v) < eps ? 0.0 : v);  // no "-0"
  }
  return t;
}

std::string format_tick(double v, double step) {
  char buf[64];
  double mag = std::max(std::abs(v), step);
  if (mag >= 1e6 || mag < 1e-3) {
    // Scientific: enough mantissa digits to tell neighbouring ticks apart.
    int digits = std::max(0, int(std::floor(std::log10(mag))) - int(std::floor(std::log10(step))));
    std::snprintf(buf, sizeof buf, "%.*e", std::min(digits, 6), v);
  } else {
    int decimals = std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

}  // namespace rv::runlog
