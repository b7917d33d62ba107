// run_plots.cpp: log.jsonl -> series -> PNGs.
#include "train/log/run_plots.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "train/log/line_plot.h"
#include "train/log/png.h"

namespace rv::runlog {

namespace fs = std::filesystem;

namespace {

// Records of log.jsonl; a half-written last line (a crash) is skipped, as on resume.
std::vector<nlohmann::json> read_log(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "log.jsonl").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("plot: cannot open '" + path + "'");
  std::vector<nlohmann::json> out;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    bool complete = !in.eof();  // getline stopped at a '\n'
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (!complete) break;
      throw std::runtime_error("plot: '" + path + "' line " + std::to_string(n) + " is not a JSON object");
    }
    out.push_back(std::move(j));
  }
  return out;
}

// A value of a record: NaN when absent or null (a logged NaN/Inf is null plus a flag), so
// the point is skipped and the line broken there.
double num(const nlohmann::json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

Series collect(const std::vector<nlohmann::json>& log, const std::string& kind, const char* key, const std::string& name) {
  Series s;
  s.name = name;
  for (const auto& r : log)
    if (r.value("kind", "") == kind && r.contains(key)) {
      s.x.push_back(num(r, "step"));
      s.y.push_back(num(r, key));
    }
  return s;
}

}  // namespace

std::vector<std::string> plot_run(const std::string& run_dir) {
  auto log = read_log(run_dir);
  fs::path dir = fs::path(run_dir) / "plots";
  fs::create_directories(dir);
  std::vector<std::string> written;
  auto emit = [&](LinePlot p, const std::string& file) {
    std::erase_if(p.series, [](const Series& s) { return s.x.empty(); });
    if (p.series.empty()) return;
    if (p.series.size() == 1) p.series[0].markers = p.series[0].x.size() <= 30;  // few points: show them
    std::string path = (dir / file).string();
    write_png(path, render(p));
    written.push_back(path);
  };
  auto plot = [](const char* title, const char* xlabel, const char* ylabel, std::vector<Series> series) {
    LinePlot p;
    p.title = title, p.xlabel = xlabel, p.ylabel = ylabel;
    p.series = std::move(series);
    return p;
  };
  emit(plot("loss", "step", "loss", {collect(log, "train", "loss", "train"), collect(log, "eval", "loss", "eval")}), "loss.png");
  emit(plot("learning rate", "step", "lr", {collect(log, "train", "lr", "")}), "lr.png");
  emit(plot("accuracy", "step", "top-1 / top-5 (%)",
            {collect(log, "eval", "top1", "top-1"), collect(log, "eval", "top5", "top-5")}),
       "accuracy.png");
  return written;
}

void plot_accuracy_vs_resolution(const std::vector<ResolutionSweep>& runs, const std::string& png_path) {
  LinePlot p;
  p.title = "top-1 vs resolution", p.xlabel = "image size (px)", p.ylabel = "top-1 (%)";
  for (const auto& r : runs) {
    if (r.img_size.size() != r.top1.size())
      throw std::invalid_argument("plot_accuracy_vs_resolution: run '" + r.name + "' has " + std::to_string(r.img_size.size()) +
                                  " sizes and " + std::to_string(r.top1.size()) + " accuracies");
    Series s;
    s.name = r.name, s.x = r.img_size, s.y = r.top1, s.markers = true;
    p.series.push_back(std::move(s));
  }
  write_png(png_path, render(p));
}

ResolutionSweep read_resolution_sweep(const std::string& run_dir, const std::string& name) {
  auto log = read_log(run_dir);
  double last_step = -std::numeric_limits<double>::infinity();
  for (const auto& r : log)
    if (r.value("kind", "") == "eval_res") last_step = std::max(last_step, num(r, "step"));
  std::map<double, double> by_size;  // sorted by size; a repeated size keeps the last value
  for (const auto& r : log)
    if (r.value("kind", "") == "eval_res" && num(r, "step") == last_step) by_size[num(r, "img_size")] = num(r, "top1");
  ResolutionSweep s;
  s.name = name;
  for (auto [size, top1] : by_size) s.img_size.push_back(size), s.top1.push_back(top1);
  return s;
}

}  // namespace rv::runlog
