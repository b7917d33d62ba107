// ticks.h: axis ticks at "nice" numbers (1, 2 or 5 times a power of ten), as a person would
// label an axis: 0, 0.2, 0.4 ... rather than 0, 0.173, 0.346 ...
#pragma once
#include <string>
#include <vector>

namespace rv::runlog {

struct Ticks {
  double step = 0;            // distance between ticks
  double lo = 0, hi = 0;      // the axis range: [lo, hi] as asked, or widened to ticks (see below)
  std::vector<double> values;  // ticks inside [lo, hi], ascending
};

// About `target` ticks over [lo, hi]. widen: stretch the range out to the ticks just outside
// it, so the data never touches the frame and the ends are labelled. lo == hi is widened to a
// unit (or 10% of |lo|) around it. Non-finite bounds throw std::invalid_argument.
Ticks nice_ticks(double lo, double hi, int target = 5, bool widen = true);

// A tick label: as few decimals as the step needs ("0.25", "1000", "-3"), or scientific form
// for very large / small magnitudes ("1e-04", "2.5e+06").
std::string format_tick(double value, double step);

}  // namespace rv::runlog
