// cmd_eval.cpp: `ropevit eval CONFIG_OR_RUN [--checkpoint PATH] [--img-size 20,28,36,44] [--ema]
// [--compare RUN2 RUN3 ...]`: top-1 / top-5 of trained weights on every image of the evaluation
// split, at each size; prints the table, writes eval_resolutions.csv / .json into the run folder
// and plots/acc_vs_res.png with this run and the --compare runs on one figure.
// A segmentation run (task = segmentation) instead takes [--mode whole|slide] [--scales R,...]
// [--flip] [--pred-dir DIR] [--ema]: mIoU / mAcc / aAcc per class (train/seg/seg_evaluate.h) into
// seg_eval.json / .csv (seg_eval_ema.* with --ema), and with --pred-dir the prediction PNGs
// (train/seg/seg_predictions.h).
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "engine/io/safetensors.h"
#include "models/registry.h"
#include "train/checkpoint.h"
#include "train/cli_options.h"
#include "train/commands.h"
#include "train/config/resolve.h"
#include "train/log/run_plots.h"
#include "train/resolution_sweep.h"
#include "train/run_dir.h"
#include "train/seg/seg_evaluate.h"
#include "train/seg/seg_setup.h"

namespace rv {
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || v <= 0)
      throw cli::UsageError("'" + part + "' is not an image size (expected e.g. 20,28,36,44)");
    out.push_back(v);
  }
  if (out.empty()) throw cli::UsageError("no image size given (expected e.g. 20,28,36,44)");
  return out;
}

// The weights to evaluate: a ropevit checkpoint (model or EMA part) or a plain weights file.
nn::StateDict load_weights(const std::string& path, bool ema) {
  SafetensorsFile f = SafetensorsFile::open(path);
  if (f.metadata().count(train::kCheckpointMetaKey)) {
    train::LoadedCheckpoint c = train::read_checkpoint(path);
    if (ema && c.ema.empty()) throw std::runtime_error("--ema: checkpoint '" + path + "' has no EMA weights");
    return ema ? c.ema : c.model;
  }
  if (ema) throw std::runtime_error("--ema: '" + path + "' is a weights file, not a checkpoint with EMA weights");
  nn::StateDict w;
  for (const auto& name : f.names()) w.insert(name, f.tensor(name));
  return w;
}

std::vector<double> parse_ratios(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || !(v > 0))
      throw cli::UsageError("'" + part + "' is not a scale ratio (expected e.g. 0.5,0.75,1.0,1.25,1.5,1.75)");
    out.push_back(v);
  }
  if (out.empty()) throw cli::UsageError("no scale ratio given (expected e.g. 0.5,0.75,1.0)");
  return out;
}

// `ropevit eval` of a segmentation run: the UperNet of the config, the weights, the metrics.
int eval_segmentation(const config::TrainConfig& cfg, const std::string& checkpoint, const std::string& run_dir,
                      const std::string& mode, const std::string& scales, bool flip, const std::string& pred_dir,
                      bool ema) {
  train::seg::SegEvalSettings st = train::seg::SegEvalSettings::from_config(cfg);
  if (!mode.empty()) {
    if (mode != "whole" && mode != "slide") throw cli::UsageError("--mode: expected whole or slide, got '" + mode + "'");
    st.mode = mode;
  }
  if (!scales.empty()) st.scales = parse_ratios(scales);
  if (flip) st.flip = true;
  st.pred_dir = pred_dir;
  models::seg::UperNet net(train::seg::seg_model_config(cfg));
  nn::StateDict weights = load_weights(checkpoint, ema);
  if (std::string why = train::state_mismatch(weights, net); !why.empty())
    throw std::runtime_error("'" + checkpoint + "' does not fit UperNet on " + cfg.model.name + ":" + why);
  net.load_state_dict(weights);
  const train::seg::SegEvalResult r = train::seg::evaluate_segmentation(net, cfg, st);
  const std::string name = fs::path(run_dir).filename().string();
  std::fputs(train::seg::format_seg_table(r, name + " (" + checkpoint + (ema ? ", EMA" : "") + ", " + st.mode +
                                                 (st.scales.empty() ? "" : ", multi-scale") + (st.flip ? ", flip" : "") +
                                                 ")")
                 .c_str(),
             stdout);
  const std::string stem = ema ? "seg_eval_ema" : "seg_eval";  // training writes both names too
  train::seg::write_seg_eval_files(run_dir, r, st, {{"model", cfg.model.name}, {"checkpoint", checkpoint}, {"ema", ema}},
                                   stem);
  std::printf("wrote %s/%s.json and %s.csv\n", run_dir.c_str(), stem.c_str(), stem.c_str());
  if (!pred_dir.empty())
    std::printf("wrote %lld label maps to %s/labels and overlays to %s/overlays\n", (long long)r.images,
                pred_dir.c_str(), pred_dir.c_str());
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  std::string target, checkpoint, sizes_text, seg_mode, seg_scales, pred_dir;
  bool seg_flip = false;
  std::vector<std::string> compare_runs;
  bool ema = false, compare = false, saved = false;
  cli::Options opts("ropevit eval", "Evaluate trained weights on every image of the evaluation split at one or more "
                                    "image sizes (top-1 / top-5).");
  opts.positional("CONFIG_OR_RUN", "a run folder (uses its config.json and checkpoints) or a config file", &target)
      .rest("RUN", "with --compare: other run folders whose eval_resolutions.json join the plot", &compare_runs)
      .value("checkpoint", "PATH", "checkpoint or weights file (default: the run's last checkpoint)", &checkpoint)
      .value("img-size", "S1,S2,...", "sizes to evaluate at (default: eval.img_sizes, else the training size)",
             &sizes_text)
      .flag("ema", "evaluate the EMA weights of the checkpoint", &ema)
      .value("mode", "whole|slide", "segmentation: whole-image or sliding-window inference (default: seg.mode)",
             &seg_mode)
      .value("scales", "R1,R2,...", "segmentation: multi-scale test at these ratios of the eval scale (mmseg: "
                                    "0.5,0.75,1.0,1.25,1.5,1.75; default: seg.scales)", &seg_scales)
      .flag("flip", "segmentation: also predict the flipped image (averaged softmax)", &seg_flip)
      .value("pred-dir", "DIR", "segmentation: also write each image's prediction as PNGs named after the image: "
                                "DIR/labels/<stem>.png, the label map in the ADE20k annotation format (class i as "
                                "i+1, 0 = other; the image's size), and DIR/overlays/<stem>.png, the image blended "
                                "0.5 with the class colours (mmseg's --out and --show-dir)", &pred_dir)
      .flag("compare", "plot the RUN folders given after the options next to this one", &compare)
      .flag("saved", "evaluate nothing: plot the run's saved eval_resolutions.json (written by training with "
                     "eval.img_sizes, or by an earlier eval) with the --compare runs", &saved)
      .epilog(
          "examples:\n"
          "  ropevit eval runs/fmnist_vit_rope_mixed --img-size 20,28,36,44\n"
          "  ropevit eval runs/rope --compare runs/ape\n"
          "  ropevit eval runs/rope --saved --compare runs/ape     # redraw the plot only\n"
          "  ropevit eval runs/scenes_upernet --mode slide          # segmentation: mIoU per class\n"
          "  ropevit eval runs/ade20k_upernet --scales 0.5,0.75,1.0,1.25,1.5,1.75 --flip\n"
          "  ropevit eval runs/scenes_upernet --pred-dir runs/scenes_upernet/preds   # label PNGs + overlays");
  if (!opts.parse(argc, argv)) return 0;
  if (!compare_runs.empty() && !compare) throw cli::UsageError("extra arguments need --compare: " + compare_runs[0]);

  if (saved) {  // the plot alone, from files the sweeps already wrote
    if (!fs::is_directory(target)) throw cli::UsageError("--saved needs a run folder, got '" + target + "'");
    if (!checkpoint.empty() || !sizes_text.empty() || ema)
      throw cli::UsageError("--saved evaluates nothing: drop --checkpoint, --img-size and --ema");
    std::vector<runlog::ResolutionSweep> sweeps;
    for (const std::string& run : [&] {
           std::vector<std::string> all = {target};
           all.insert(all.end(), compare_runs.begin(), compare_runs.end());
           return all;
         }()) {
      runlog::ResolutionSweep s;
      s.name = fs::path(run).filename().string();
      for (const auto& [size, top1] : train::read_resolution_file(run))
        s.img_size.push_back(double(size)), s.top1.push_back(top1);
      sweeps.push_back(std::move(s));
    }
    fs::create_directories(fs::path(target) / "plots");
    const std::string png = (fs::path(target) / "plots" / "acc_vs_res.png").string();
    runlog::plot_accuracy_vs_resolution(sweeps, png);
    std::printf("wrote %s\n", png.c_str());
    return 0;
  }

  // Which config, which weights, which run folder.
  std::string config_path = target, run_dir;
  if (fs::is_directory(target)) {
    run_dir = target;
    config_path = (fs::path(target) / "config.json").string();
    if (checkpoint.empty()) {
      const std::string last = train::checkpoints_dir(run_dir) + "/last.safetensors";
      if (fs::exists(last)) {
        checkpoint = last;
      } else if (auto found = train::find_latest_checkpoint(train::checkpoints_dir(run_dir))) {
        checkpoint = *found;
      } else if (fs::exists(fs::path(run_dir) / "model.safetensors")) {
        checkpoint = (fs::path(run_dir) / "model.safetensors").string();
      } else {
        throw std::runtime_error("run folder '" + run_dir + "' has no checkpoint; give one with --checkpoint");
      }
    }
  } else {
    if (checkpoint.empty()) throw cli::UsageError("a config file needs --checkpoint (or give a run folder)");
    const fs::path parent = fs::path(checkpoint).parent_path();
    run_dir = (parent.filename() == "checkpoints" ? parent.parent_path() : parent).string();
  }
  const config::ResolvedConfig rc = config::resolve_config(config_path);
  const config::TrainConfig& cfg = rc.config;
  if (cfg.task == "segmentation") {
    if (!sizes_text.empty() || compare)
      throw cli::UsageError("segmentation runs take --mode, --scales, --flip, --ema and --pred-dir, not --img-size "
                            "or --compare");
    return eval_segmentation(cfg, checkpoint, run_dir, seg_mode, seg_scales, seg_flip, pred_dir, ema);
  }
  if (!seg_mode.empty() || !seg_scales.empty() || seg_flip || !pred_dir.empty())
    throw cli::UsageError("--mode, --scales, --flip and --pred-dir are for segmentation runs (task = segmentation)");
  std::vector<int64_t> sizes = !sizes_text.empty() ? parse_sizes(sizes_text) : cfg.eval.img_sizes;
  const models::ModelConfig mc = cfg.model_config();
  if (sizes.empty()) sizes = {mc.img_h};

  auto model = models::create_model(mc);
  const nn::StateDict weights = load_weights(checkpoint, ema);
  if (std::string why = train::state_mismatch(weights, *model); !why.empty())
    throw std::runtime_error("'" + checkpoint + "' does not fit model " + cfg.model.name + ":" + why);
  model->load_state_dict(weights);

  const auto rows = train::evaluate_resolutions(*model, cfg, sizes);
  const std::string name = fs::path(run_dir).filename().string();
  std::fputs(train::format_resolution_table(rows, name + " (" + checkpoint + (ema ? ", EMA" : "") + ")").c_str(),
             stdout);
  train::write_resolution_files(run_dir, rows, {{"model", cfg.model.name}, {"checkpoint", checkpoint}, {"ema", ema}});

  std::vector<runlog::ResolutionSweep> sweeps(1);
  sweeps[0].name = name;
  for (const auto& r : rows) sweeps[0].img_size.push_back(double(r.img_size)), sweeps[0].top1.push_back(r.result.top1());
  for (const auto& other : compare_runs) {
    runlog::ResolutionSweep s;
    s.name = fs::path(other).filename().string();
    for (const auto& [size, top1] : train::read_resolution_file(other))
      s.img_size.push_back(double(size)), s.top1.push_back(top1);
    sweeps.push_back(std::move(s));
  }
  fs::create_directories(fs::path(run_dir) / "plots");
  const std::string png = (fs::path(run_dir) / "plots" / "acc_vs_res.png").string();
  runlog::plot_accuracy_vs_resolution(sweeps, png);
  std::printf("wrote %s/eval_resolutions.csv, eval_resolutions.json and %s\n", run_dir.c_str(), png.c_str());
  return 0;
}

}  // namespace rv
