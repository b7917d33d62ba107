// line_plot.h: a line chart drawn into an Image: frame, nice ticks with labels, a title, axis
// labels, several series (each a polyline, optionally with square markers) and a legend.
//
//   runlog::LinePlot p{.title = "loss", .xlabel = "step", .ylabel = "loss"};
//   p.series.push_back({.name = "train", .x = steps, .y = losses});
//   runlog::write_png(run_dir + "/plots/loss.png", runlog::render(p));
//
// Non-finite points are skipped and break the line (a NaN loss shows as a gap, not a spike).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "train/log/image.h"

namespace rv::runlog {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length
  std::optional<Color> color;  // default: the palette, by series index
  bool markers = false;        // a small square at each point (few points: a resolution sweep)
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  int width = 640, height = 400;
  // Axis ranges: given bounds are used exactly; missing ones come from the data, widened to
  // nice ticks.
  std::optional<double> x_min, x_max, y_min, y_max;
};

// Where the data area landed and what it spans, so callers (and tests) can map values to pixels.
struct PlotFrame {
  int left = 0, top = 0, right = 0, bottom = 0;  // inclusive pixel bounds of the data area
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;         // the values at the left/right and bottom/top edges
  double fx(double x) const;  // value -> pixel coordinate, unrounded
  double fy(double y) const;
  int px(double x) const;     // ... rounded to the pixel
  int py(double y) const;
};

Color palette(size_t i);  // distinct colours for series 0, 1, 2, ... (cycles after 8)

// Throws std::invalid_argument (naming the series) on x/y length mismatch or a too small size.
Image render(const LinePlot& plot, PlotFrame* frame = nullptr);

}  // namespace rv::runlog
