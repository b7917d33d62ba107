// line_plot.cpp: layout (margins from the label sizes), axes, series, legend.
#include "train/log/line_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "train/log/ticks.h"

namespace rv::runlog {

namespace {

const Color kInk{0, 0, 0}, kGrid{225, 225, 225}, kWhite{255, 255, 255}, kTickInk{60, 60, 60};

// The range of the finite values of one coordinate over all series.
std::pair<double, double> data_range(const LinePlot& p, bool want_x) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      double v = want_x ? s.x[i] : s.y[i];
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (lo > hi) lo = 0, hi = 1;  // no data: an empty unit frame
  return {lo, hi};
}

Ticks axis(std::optional<double> want_lo, std::optional<double> want_hi, std::pair<double, double> data) {
  double lo = want_lo.value_or(data.first), hi = want_hi.value_or(data.second);
  if (want_lo && want_hi) {
    if (!(hi > lo)) throw std::invalid_argument("LinePlot: an axis range must have min < max");
    return nice_ticks(lo, hi, 6, /*widen=*/false);
  }
  Ticks t = nice_ticks(lo, hi, 6, /*widen=*/true);
  if (want_lo) t = nice_ticks(*want_lo, t.hi, 6, false);  // keep the given bound exact
  if (want_hi) t = nice_ticks(t.lo, *want_hi, 6, false);
  return t;
}

// Liang-Barsky: clips the segment to the rectangle; false if nothing of it is inside.
bool clip(double& x0, double& y0, double& x1, double& y1, double l, double t, double r, double b) {
  double u0 = 0, u1 = 1, dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy}, q[4] = {x0 - l, r - x0, y0 - t, b - y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
    } else {
      double u = q[i] / p[i];
      if (p[i] < 0) u0 = std::max(u0, u);
      else u1 = std::min(u1, u);
    }
  }
  if (u0 > u1) return false;
  double ax = x0 + u0 * dx, ay = y0 + u0 * dy;
  x1 = x0 + u1 * dx, y1 = y0 + u1 * dy;
  x0 = ax, y0 = ay;
  return true;
}

}  // namespace

// One mapping for everything drawn (ticks, lines, markers), so a value and its tick share a row.
double PlotFrame::fx(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
double PlotFrame::fy(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
int PlotFrame::px(double x) const { return int(std::lround(fx(x))); }
int PlotFrame::py(double y) const { return int(std::lround(fy(y))); }

Color palette(size_t i) {
  static const Color colors[8] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
                                  {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {23, 190, 207}};
  return colors[i % 8];
}

Image render(const LinePlot& p, PlotFrame* frame_out) {
  for (const Series& s : p.series)
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("LinePlot: series '" + s.name + "' has " + std::to_string(s.x.size()) + " x values and " +
                                  std::to_string(s.y.size()) + " y values");
  if (p.width < 160 || p.height < 120)
    throw std::invalid_argument("LinePlot: the image must be at least 160x120, got " + std::to_string(p.width) + "x" +
                                std::to_string(p.height));

  Ticks xt = axis(p.x_min, p.x_max, data_range(p, true));
  Ticks yt = axis(p.y_min, p.y_max, data_range(p, false));
  size_t ylabel_chars = 0;
  for (double v : yt.values) ylabel_chars = std::max(ylabel_chars, format_tick(v, yt.step).size());

  PlotFrame f;
  f.left = 8 + (p.ylabel.empty() ? 0 : kCellH + 6) + int(ylabel_chars) * kCellW + 6;
  f.top = p.title.empty() ? 12 : 8 + 2 * kCellH + 8;
  f.right = p.width - 1 - 16;
  f.bottom = p.height - 1 - (6 + kCellH + 4 + (p.xlabel.empty() ? 0 : kCellH + 6));
  f.x0 = xt.lo, f.x1 = xt.hi, f.y0 = yt.lo, f.y1 = yt.hi;

  Image img(p.width, p.height, kWhite);
  // grid and ticks
  for (double v : xt.values) {
    int x = f.px(v);
    draw_line(img, x, f.top, x, f.bottom, kGrid);
    draw_line(img, x, f.bottom, x, f.bottom + 4, kTickInk);
    std::string s = format_tick(v, xt.step);
    draw_text(img, x - text_width(s) / 2, f.bottom + 7, s, kInk);
  }
  for (double v : yt.values) {
    int y = f.py(v);
    draw_line(img, f.left, y, f.right, y, kGrid);
    draw_line(img, f.left - 4, y, f.left, y, kTickInk);
    std::string s = format_tick(v, yt.step);
    draw_text(img, f.left - 6 - text_width(s), y - kGlyphH / 2, s, kInk);
  }
  draw_rect(img, f.left, f.top, f.right, f.bottom, kInk);

  // series, clipped to the data area
  for (size_t si = 0; si < p.series.size(); ++si) {
    const Series& s = p.series[si];
    Color c = s.color.value_or(palette(si));
    for (size_t i = 0; i + 1 < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || !std::isfinite(s.x[i + 1]) || !std::isfinite(s.y[i + 1])) continue;
      double ax = f.fx(s.x[i]), ay = f.fy(s.y[i]), bx = f.fx(s.x[i + 1]), by = f.fy(s.y[i + 1]);
      if (clip(ax, ay, bx, by, f.left, f.top, f.right, f.bottom))
        draw_line(img, int(std::lround(ax)), int(std::lround(ay)), int(std::lround(bx)), int(std::lround(by)), c, 2);
    }
    bool lone = s.x.size() == 1;  // a single point has no segment: always mark it
    if (s.markers || lone)
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        int x = f.px(s.x[i]), y = f.py(s.y[i]);
        if (x >= f.left && x <= f.right && y >= f.top && y <= f.bottom) fill_rect(img, x - 2, y - 2, x + 2, y + 2, c);
      }
  }
  draw_rect(img, f.left, f.top, f.right, f.bottom, kInk);  // over line ends at the edge

  // legend: top-right inside the frame, only when some series is named
  size_t named = 0, longest = 0;
  for (const Series& s : p.series)
    if (!s.name.empty()) ++named, longest = std::max(longest, s.name.size());
  if (named > 0) {
    int w = 8 + 18 + int(longest) * kCellW + 8, h = 6 + int(named) * (kCellH + 4) + 2;
    int x0 = f.right - 6 - w, y0 = f.top + 6;
    fill_rect(img, x0, y0, x0 + w, y0 + h, kWhite);
    draw_rect(img, x0, y0, x0 + w, y0 + h, kTickInk);
    int row = 0;
    for (size_t si = 0; si < p.series.size(); ++si) {
      if (p.series[si].name.empty()) continue;
      int y = y0 + 6 + row * (kCellH + 4);
      Color c = p.series[si].color.value_or(palette(si));
      draw_line(img, x0 + 8, y + 3, x0 + 8 + 14, y + 3, c, 2);
      draw_text(img, x0 + 8 + 18, y, p.series[si].name, kInk);
      ++row;
    }
  }

  if (!p.title.empty()) draw_text(img, (p.width - text_width(p.title, 2)) / 2, 8, p.title, kInk, 2);
  if (!p.xlabel.empty()) draw_text(img, (f.left + f.right - text_width(p.xlabel)) / 2, p.height - 1 - 4 - kCellH, p.xlabel, kInk);
  if (!p.ylabel.empty()) draw_text_up(img, 8, (f.top + f.bottom - text_width(p.ylabel)) / 2, p.ylabel, kInk);
  if (frame_out) *frame_out = f;
  return img;
}

}  // namespace rv::runlog
