// resolution_sweep.h: accuracy of one set of weights at several input sizes (what RoPE is for:
// accuracy away from the training resolution), and the files that record it.
//
// ViT accepts any size divisible by its patch (RoPE tables follow the grid; APE is resampled),
// so the same model runs every size. Swin is built for one size, so a model per size is made
// with the img_size override and the weights are loaded into it (an RPB model whose window
// changes with the size has differently shaped tables: that size is refused, naming them).
//
// Files in the run folder (docs/formats.md):
//   eval_resolutions.csv   img_size,top1,top5,loss,samples     one row per size
//   eval_resolutions.json  {"model", "checkpoint", "ema", "step", "rows": [{img_size, top1, ...}]}
//   plots/acc_vs_res.png   top-1 vs size (train/log/run_plots.h)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "train/config/train_config.h"
#include "train/evaluate.h"

namespace rv::train {

struct ResolutionRow {
  int64_t img_size = 0;
  EvalResult result;
};

// Every sample of the evaluation split (data.val_subset applies) at each size in `sizes`.
// `known`: rows already measured on these weights with this config's evaluation loader (the
// trainer's last evaluation at the training size); a size found there is copied, not evaluated
// again. The caller vouches that it is the same evaluation (same weights, images and batches).
std::vector<ResolutionRow> evaluate_resolutions(models::Model& model, const config::TrainConfig& cfg,
                                                const std::vector<int64_t>& sizes,
                                                const std::vector<ResolutionRow>& known = {});

// The printed table: "img_size  top1  top5  loss" with a header naming the run.
std::string format_resolution_table(const std::vector<ResolutionRow>& rows, const std::string& title);

// eval_resolutions.csv / .json in run_dir; `info` is merged into the JSON's top level.
void write_resolution_files(const std::string& run_dir, const std::vector<ResolutionRow>& rows,
                            const nlohmann::json& info);

// Reads back eval_resolutions.json of a run (for --compare): (size, top1) pairs.
std::vector<std::pair<int64_t, double>> read_resolution_file(const std::string& run_dir);

}  // namespace rv::train
