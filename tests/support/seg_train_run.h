// seg_train_run.h: in-process segmentation training runs for the tests that compare the CPU
// route with a device route (tests/integration/test_seg_device.cpp on a CpuMirrorBackend,
// tests/cuda/test_seg_train_cuda.cpp on a GPU): generated scenes, a tiny UperNet config, a
// SegTrainer run in a fresh run folder, and readers for what a run leaves (log losses,
// checkpoint tensors, seg_eval.json).
#pragma once
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "data/scene_files.h"
#include "data/scenes.h"
#include "engine/io/safetensors.h"
#include "train/config/resolve.h"
#include "train/run_dir.h"
#include "train/seg/seg_trainer.h"

namespace rv::test::segrun {
namespace fs = std::filesystem;
using nlohmann::json;

inline const fs::path& tmp_root() {
  static const fs::path root = [] {
    const fs::path p = fs::temp_directory_path() / ("rv_seg_device_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return root;
}

// 8 training and 2 validation scenes of 64 px, drawn shapes (no data set needed).
inline const fs::path& scenes() {
  static const fs::path root = [] {
    const data::SceneOptions so{.size = 64};
    auto gen = [&](uint64_t seed) {
      auto [im, lab] = data::shape_items(200, seed);
      return data::SceneGenerator(im, lab, so);
    };
    const fs::path out = tmp_root() / "scenes";
    data::write_scene_sets(gen(2), gen(3), {.out_dir = out.string(), .train_images = 8, .val_images = 2, .seed = 5});
    return out / "ADEChallengeData2016";
  }();
  return root;
}

// The tiny run: ViT width 32, depth 4, 2 heads, crop 64, heads of 16 / 8 channels, batch 2,
// 4 iterations (warmup 1, poly), dropout 0.1 (the device draws the same masks), an EMA, clipping,
// a recovery checkpoint at step 2, validation at step 4; the final evaluation sliding-window
// (crop 64, stride 43) at scales 1.0 and 1.3 (83 px: two windows, padded to 96) with flip.
inline config::ResolvedConfig make_config(const std::string& name, const std::string& device, double lr = 1e-3) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/scenes_upernet_vit_tiny_rope_mixed.json"},
            {"model", {{"embed_dim", 32}, {"depth", {4}}, {"num_heads", {2}}}},
            {"data", {{"root", scenes().string()}, {"workers", 0}}},
            // eps 1e-3: a weight whose gradient is zero up to rounding (fpn1's first bias, in front
            // of a BatchNorm) would otherwise get updates of about lr from Adam's normalisation of
            // that noise, which differs between any two summation orders; with it those updates
            // are tiny and the runs can be compared tightly. Real gradients still move the weights.
            {"optim", {{"lr", lr}, {"eps", 1e-3}}},
            {"sched", {{"warmup_iters", 1}}},
            {"train", {{"iters", 4}, {"batch_size", 2}, {"ema_decay", 0.9}, {"clip_grad", 1.0}, {"device", device},
                       {"out_dir", (tmp_root() / "runs").string()}, {"run_name", name}}},
            {"seg", {{"crop", 64}, {"channels", 16}, {"aux_channels", 8}, {"stride", 43}, {"mode", "slide"},
                     {"scales", {1.0, 1.3}}, {"flip", true}}},
            {"log", {{"interval", 1}, {"tensorboard", false}}},
            {"eval", {{"interval", 4}}},
            {"ckpt", {{"recovery_steps", 2}}}};
  const fs::path p = tmp_root() / (name + ".json");
  std::ofstream(p) << c.dump(2);
  return config::resolve_config(p.string());
}

inline fs::path run_dir(const std::string& name) { return tmp_root() / "runs" / name; }

inline train::TrainSummary train_run(const std::string& name, const std::string& device,
                                     const std::optional<std::string>& resume = std::nullopt, double lr = 1e-3) {
  train::RunPlan plan;
  plan.dir = run_dir(name).string();
  plan.resume = resume;
  fs::create_directories(plan.dir);
  train::seg::SegTrainer t(make_config(name, device, lr), plan);
  return t.fit();
}

inline std::map<int64_t, double> step_losses(const std::string& name) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir(name) / "log.jsonl");
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j.value("kind", "") == "train" && j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

inline json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

// The largest absolute difference over every tensor of two safetensors files (the same names),
// and the tensor it is in. Absolute, as the values are O(1) or less.
inline std::pair<double, std::string> largest_difference(const fs::path& a, const fs::path& b) {
  const SafetensorsFile fa = SafetensorsFile::open(a.string()), fb = SafetensorsFile::open(b.string());
  REQUIRE(fa.names() == fb.names());
  double worst = 0;
  std::string worst_name;
  for (const auto& name : fa.names()) {
    const std::vector<double> x = fa.tensor(name).to_double_vector(), y = fb.tensor(name).to_double_vector();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i)
      if (std::abs(x[i] - y[i]) > worst) worst = std::abs(x[i] - y[i]), worst_name = name;
  }
  return {worst, worst_name};
}

}  // namespace rv::test::segrun
