// run_plots.h: the standard plots of a run, drawn from its log.jsonl into <run>/plots/:
//   loss.png      train loss vs step (and eval loss, if logged)
//   lr.png        learning rate vs step
//   accuracy.png  eval top-1 (and top-5) vs step
// and the multi-resolution plot: top-1 vs evaluation image size, one series per run (what
// RoPE is for: accuracy away from the training resolution).
//
// It reads the record conventions of docs/formats.md: {"kind": "train", "step", "loss", "lr"},
// {"kind": "eval", "step", "top1", "top5", "loss"}, {"kind": "eval_res", "step", "img_size", "top1"}.
#pragma once
#include <string>
#include <vector>

namespace rv::runlog {

// Writes the plots that have data (a run without eval records gets no accuracy.png) and
// returns their paths. Throws std::runtime_error naming the file on an unreadable log.
std::vector<std::string> plot_run(const std::string& run_dir);

struct ResolutionSweep {
  std::string name;             // the run's legend entry
  std::vector<double> img_size;  // e.g. 128, 160, 224, 320, 448
  std::vector<double> top1;      // same length
};
void plot_accuracy_vs_resolution(const std::vector<ResolutionSweep>& runs, const std::string& png_path);

// The last step's resolution sweep of a run (records of kind "eval_res"), for the plot above.
ResolutionSweep read_resolution_sweep(const std::string& run_dir, const std::string& name);

}  // namespace rv::runlog
