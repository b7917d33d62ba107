// test_train_cli.cpp: `ropevit train`, `ropevit eval` and `ropevit export` run as a user runs
// them, on a tiny ViT and a few hundred Fashion-MNIST images:
//   - a run killed with _exit(137) mid-epoch (the RV_TEST_EXIT_AFTER_STEP hook, train/test_hooks.h)
//     and resumed with --resume auto logs the same losses, bit for bit, as an uninterrupted run
//     (with drop path, Mixup/CutMix, EMA and gradient accumulation all on, so each of their
//     states must be restored);
//   - train.progressive_sizes trains epoch stages at smaller sizes and resumes exactly across them;
//   - the loss falls and the model learns; ckpt.init_from starts a run from trained weights;
//   - a NaN loss stops the run naming the step and the last checkpoint, or is skipped and counted;
//   - evaluation counts every sample once whatever the batch size;
//   - train.amp = bf16 on the CPU follows the fp32 run's loss curve;
//   - errors: a checkpoint of another model, a truncated checkpoint, a data set this build does
//     not have.
// Needs the Fashion-MNIST files (Debian's dataset-fashion-mnist); without them the test says so
// and fails, as the data tests do.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "engine/io/safetensors.h"
#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using Run = rv::test::CliRun;
using rv::test::contains;
using rv::test::lines;
using rv::test::read_file;

// A scratch folder for this process, removed at exit.
const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_train_cli");
  return d;
}

// Runs `[env] ropevit <args>` from the source folder (configs/ paths are relative to it).
Run ropevit(const std::string& args, const std::string& env = "") {
  return rv::test::ropevit(args, {.env = env, .cwd = RV_SOURCE_DIR});
}

// The tiny run: ViT width 32, depth 2, on 384 training images in batches of 32 with 2 micro-batches
// per step (6 steps per epoch, 12 in all), evaluated on 200 test images at 28 px and swept at 20
// and 28; checkpoints every epoch (the newest kept) and every 4 steps. `extra` is merged over it.
fs::path write_config(const std::string& name, const json& extra = json::object()) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/fmnist_base.json"},
            {"model",
             {{"name", "vit_tiny_patch16_rope_mixed_224"},
              {"embed_dim", 32},
              {"depth", {2}},
              {"num_heads", {2}},
              {"drop_path_rate", 0.1}}},
            {"data", {{"train_subset", 384}, {"val_subset", 200}, {"workers", 2}}},
            {"aug", {{"mixup", 0.8}, {"cutmix", 1.0}}},
            {"optim", {{"lr", 2e-3}}},
            {"sched", {{"warmup_epochs", 0.5}}},
            {"train",
             {{"epochs", 2}, {"batch_size", 32}, {"grad_accum", 2}, {"ema_decay", 0.9},
              {"out_dir", tmp().path.string()}, {"run_name", name}}},
            {"eval", {{"img_sizes", {20, 28}}, {"batch_size", 64}}},
            {"log", {{"interval", 1}, {"progress", "plain"}}},
            {"ckpt", {{"recovery_steps", 4}, {"every_epochs", 1}, {"keep", 1}}}};
  c.merge_patch(extra);
  const fs::path p = tmp().path / (name + ".json");
  std::ofstream(p) << c.dump(2);
  return p;
}

std::vector<json> records(const fs::path& run, const std::string& kind) {
  std::vector<json> out;
  std::istringstream in(read_file(run / "log.jsonl"));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    if (j.value("kind", "") == kind) out.push_back(j);
  }
  return out;
}

// The train losses as their exact JSON text, keyed by step.
std::vector<std::pair<int64_t, std::string>> losses(const fs::path& run) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const auto& r : records(run, "train")) out.emplace_back(r["step"].get<int64_t>(), r["loss"].dump());
  return out;
}

bool have_data() {
  return !rv::data::FashionMnist::find_file(rv::data::FashionMnist::kDebianDir, "train-images-idx3-ubyte").empty();
}

}  // namespace

TEST_CASE("train: a run killed mid-epoch and resumed logs the same losses bit for bit") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  const fs::path full_cfg = write_config("full"), cut_cfg = write_config("cut");
  Run full = ropevit("train '" + full_cfg.string() + "'");
  INFO(full.err);
  REQUIRE(full.code == 0);
  const fs::path full_dir = tmp().path / "full";
  const auto expected = losses(full_dir);
  REQUIRE(expected.size() == 12);
  for (size_t i = 0; i < expected.size(); ++i) CHECK(expected[i].first == int64_t(i + 1));
  for (const char* f : {"config.json", "summary.csv", "model.safetensors", "eval_resolutions.csv",
                        "eval_resolutions.json", "plots/loss.png", "plots/acc_vs_res.png",
                        "checkpoints/last.safetensors", "checkpoints/best.safetensors",
                        "checkpoints/recovery.safetensors"})
    CHECK_MESSAGE(fs::exists(full_dir / f), f);
  CHECK(!fs::is_empty(full_dir / "tb"));
  CHECK(fs::exists(full_dir / "checkpoints/epoch_0002.safetensors"));
  CHECK(!fs::exists(full_dir / "checkpoints/epoch_0001.safetensors"));  // ckpt.keep = 1

  // Killed right after step 10: the newest checkpoint is the recovery one of step 8 (epoch 1,
  // step 2 of 6), past the end-of-epoch checkpoint of step 6.
  Run killed = ropevit("train '" + cut_cfg.string() + "'", "RV_TEST_EXIT_AFTER_STEP=10");
  CHECK(killed.code == 137);
  const fs::path cut_dir = tmp().path / "cut";
  CHECK(losses(cut_dir).size() == 10);
  Run resumed = ropevit("train '" + cut_cfg.string() + "' --resume auto");
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(contains(resumed.err, "resuming from"));
  CHECK(contains(resumed.err, "recovery.safetensors"));
  CHECK(losses(cut_dir) == expected);  // steps 9 and 10 were cut from the log and redone identically
  // The evaluations and the summary agree too.
  CHECK(records(cut_dir, "eval") .size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(records(cut_dir, "eval")[i]["top1"] == records(full_dir, "eval")[i]["top1"]);
    CHECK(records(cut_dir, "eval")[i]["top1_ema"] == records(full_dir, "eval")[i]["top1_ema"]);
  }
  CHECK(read_file(cut_dir / "summary.csv") == read_file(full_dir / "summary.csv"));
  const auto a = rv::load_safetensors((full_dir / "model.safetensors").string());
  const auto b = rv::load_safetensors((cut_dir / "model.safetensors").string());
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) CHECK_MESSAGE(b.at(name).to_vector<float>() == t.to_vector<float>(), name);

  {  // the training's sweep (of the EMA weights) took its 28 px row from the last epoch's EMA
     // evaluation instead of evaluating again: a fresh evaluation of those weights gives the same rows
    const json trained = json::parse(read_file(full_dir / "eval_resolutions.json"))["rows"];
    REQUIRE(trained.size() == 2);
    CHECK(trained[1]["img_size"] == 28);
    CHECK(trained[1]["top1"] == records(full_dir, "eval").back()["top1_ema"]);
    Run fresh = ropevit("eval '" + full_dir.string() + "' --ema --img-size 20,28");
    INFO(fresh.err);
    REQUIRE(fresh.code == 0);
    const json rows = json::parse(read_file(full_dir / "eval_resolutions.json"))["rows"];
    REQUIRE(rows.size() == 2);
    for (size_t i = 0; i < 2; ++i)
      for (const char* k : {"img_size", "samples", "top1_correct", "top5_correct", "loss"})
        CHECK_MESSAGE(rows[i][k] == trained[i][k], "row " << i << ": " << std::string(k));
  }

  {  // eval: every sample once, whatever the batch size; --compare plots both runs; export
    Run e = ropevit("eval '" + full_dir.string() + "' --img-size 20,28");
    INFO(e.err);
    REQUIRE(e.code == 0);
    CHECK(contains(e.out, "img_size"));
    const json rows = json::parse(read_file(full_dir / "eval_resolutions.json"))["rows"];
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["img_size"] == 20);
    CHECK(rows[1]["samples"] == 200);
    CHECK(rows[0]["samples"] == 200);
    // the training run's own evaluation at 28 px used the same weights (last = end of training)
    CHECK(rows[1]["top1"] == records(full_dir, "eval").back()["top1"]);
    // batches of 7 (200 = 28 * 7 + 4) give the same counts as batches of 64
    const fs::path odd = write_config("odd_batch", {{"eval", {{"batch_size", 7}}}});
    Run e7 = ropevit("eval '" + odd.string() + "' --checkpoint '" + (full_dir / "checkpoints/last.safetensors").string() +
                     "' --img-size 20,28");
    INFO(e7.err);
    REQUIRE(e7.code == 0);
    const json rows7 = json::parse(read_file(full_dir / "eval_resolutions.json"))["rows"];
    for (size_t i = 0; i < 2; ++i) {
      CHECK(rows7[i]["top1_correct"] == rows[i]["top1_correct"]);
      CHECK(rows7[i]["top5_correct"] == rows[i]["top5_correct"]);
      CHECK(rows7[i]["samples"] == 200);
    }
    Run cmp = ropevit("eval '" + cut_dir.string() + "' --ema --compare '" + full_dir.string() + "'");
    INFO(cmp.err);
    CHECK(cmp.code == 0);
    CHECK(fs::exists(cut_dir / "plots/acc_vs_res.png"));
    // --saved: the plot alone, redrawn from both runs' files (nothing evaluated, so fast and no table)
    fs::remove(cut_dir / "plots/acc_vs_res.png");
    Run sv = ropevit("eval '" + cut_dir.string() + "' --saved --compare '" + full_dir.string() + "'");
    INFO(sv.err);
    CHECK(sv.code == 0);
    CHECK(fs::exists(cut_dir / "plots/acc_vs_res.png"));
    CHECK_FALSE(contains(sv.out, "top1"));
    Run sv_bad = ropevit("eval '" + cut_dir.string() + "' --saved --img-size 20");
    CHECK(sv_bad.code == 2);
    CHECK(contains(sv_bad.err, "--saved evaluates nothing"));
    Run sv_none = ropevit("eval '" + tmp().path.string() + "' --saved");
    CHECK(sv_none.code != 0);
    CHECK(contains(sv_none.err, "eval_resolutions"));
    // export
    const fs::path out = tmp().path / "exported.safetensors";
    Run ex = ropevit("export '" + (full_dir / "checkpoints/last.safetensors").string() + "' '" + out.string() + "' --ema");
    CHECK(ex.code == 0);
    CHECK(rv::load_safetensors(out.string()).count("blocks.1.attn.qkv.weight") == 1);
  }
  {  // resume errors: another model, a truncated checkpoint
    const fs::path wide = write_config("wide", {{"model", {{"embed_dim", 48}}}});
    Run w = ropevit("train '" + wide.string() + "' --resume '" + (full_dir / "checkpoints/last.safetensors").string() + "'");
    CHECK(w.code == 1);
    CHECK(contains(w.err, "does not fit"));
    CHECK(contains(w.err, "shape of"));
    const std::string bytes = read_file(full_dir / "checkpoints/recovery.safetensors");
    const fs::path cut = tmp().path / "truncated.safetensors";
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 4096);
    Run t = ropevit("train '" + full_cfg.string() + "' --resume '" + cut.string() + "'");
    CHECK(t.code == 1);
    CHECK(contains(t.err, "truncated.safetensors"));
  }
}

TEST_CASE("train: train.progressive_sizes trains each stage at its size and resumes exactly across stages") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  // Epoch 0 at 20 px, epoch 1 at 28 px (the model's size).
  const json prog = {{"train", {{"progressive_sizes", {20, 28}}}}};
  const fs::path full_cfg = write_config("prog_full", prog), cut_cfg = write_config("prog_cut", prog);
  Run full = ropevit("train '" + full_cfg.string() + "'");
  INFO(full.err);
  REQUIRE(full.code == 0);
  CHECK(contains(full.err, "28x28 -> 20x20"));  // the first stage's data set
  CHECK(contains(full.err, "epoch 1: training at 28 px (train.progressive_sizes)"));
  const auto expected = losses(tmp().path / "prog_full");
  REQUIRE(expected.size() == 12);
  // Killed in epoch 1 (the 28 px stage) after its recovery checkpoint of step 8: the resumed run
  // starts with the first stage's loader and must switch to the second before its first step.
  Run killed = ropevit("train '" + cut_cfg.string() + "'", "RV_TEST_EXIT_AFTER_STEP=10");
  CHECK(killed.code == 137);
  Run resumed = ropevit("train '" + cut_cfg.string() + "' --resume auto");
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(losses(tmp().path / "prog_cut") == expected);

  // The settings it refuses, each naming the key and what it needs.
  struct Bad { json sizes; json extra; const char* says; };
  const json by_iters = {{"train", {{"iters", 10}}}, {"sched", {{"warmup_epochs", 0}}}};
  for (const Bad& b : {Bad{{20, 24}, json::object(), "must end with the model's image size 28"},
                       Bad{{22, 28}, json::object(), "size 22 is not a multiple of the patch size 4"},
                       Bad{{20, 24, 28}, json::object(), "has 3 sizes but train.epochs = 2"},
                       Bad{{20, 28}, by_iters, "cannot be used with train.iters"}}) {
    json extra = b.extra;
    extra["train"]["progressive_sizes"] = b.sizes;
    Run r = ropevit("train '" + write_config("prog_bad", extra).string() + "'");
    CHECK(r.code == 1);
    CHECK_MESSAGE(contains(r.err, "train.progressive_sizes"), r.err);
    CHECK_MESSAGE(contains(r.err, b.says), r.err);
  }
}

TEST_CASE("train: the loss falls and the model learns") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  // Plain: no mixup, no drop path, no accumulation; 2048 images, 3 epochs of 64 steps. (timm's
  // init, std 0.02, and LayerScale start slowly: PyTorch with the same init is at ~32% top-1
  // after 64 steps, as this engine is.)
  const fs::path cfg = write_config("learn", {{"model", {{"drop_path_rate", 0.0}}},
                                              {"aug", {{"mixup", 0.0}, {"cutmix", 0.0}}},
                                              {"data", {{"train_subset", 2048}}},
                                              {"optim", {{"lr", 3e-3}}},
                                              {"train", {{"epochs", 3}, {"grad_accum", 1}, {"ema_decay", 0.0}}},
                                              {"eval", {{"img_sizes", json::array()}}},
                                              {"log", {{"interval", 4}}},
                                              {"ckpt", {{"recovery_steps", 0}}}});
  Run r = ropevit("train '" + cfg.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto l = records(tmp().path / "learn", "train");
  REQUIRE(l.size() == 48);  // every 4th of 192 steps
  double first = 0, last = 0;
  for (size_t i = 0; i < 6; ++i) first += l[i]["loss"].get<double>() / 6, last += l[l.size() - 1 - i]["loss"].get<double>() / 6;
  CHECK(first > 2.0);  // about ln 10 = 2.30 at the start
  CHECK(last < 0.85 * first);
  const auto ev = records(tmp().path / "learn", "eval");
  REQUIRE(ev.size() == 3);
  CHECK(ev.back()["loss"].get<double>() < ev.front()["loss"].get<double>() - 0.3);
  CHECK(ev.back()["top1"].get<double>() > 35.0);  // chance is 10%

  // ckpt.init_from: a new run starts from those weights (its first losses are the trained ones)
  const fs::path init = write_config("init", {{"model", {{"drop_path_rate", 0.0}}},
                                              {"aug", {{"mixup", 0.0}, {"cutmix", 0.0}}},
                                              {"train", {{"epochs", 1}, {"grad_accum", 1}, {"ema_decay", 0.0}}},
                                              {"eval", {{"img_sizes", json::array()}}},
                                              {"ckpt", {{"recovery_steps", 0},
                                                        {"init_from", (tmp().path / "learn/checkpoints/last.safetensors").string()}}}});
  Run i = ropevit("train '" + init.string() + "'");
  INFO(i.err);
  REQUIRE(i.code == 0);
  CHECK(contains(i.err, "weights from"));
  CHECK(records(tmp().path / "init", "train").front()["loss"].get<double>() < 0.9 * first);
}

// train.amp = bf16 on the CPU (forward + loss under bf16 autocast, fp32 master weights and
// optimizer) against the same run in fp32: same seed, data, augmentation and dropout draws, so the
// two curves differ only by bf16 rounding. Bound: each step's loss within 0.01 of the fp32 loss
// (measured: 2e-4 at most over the 12 steps, losses ~2.2; the bound leaves room for the drift that
// bf16 rounding of activations and gradients adds under other thread counts and BLAS builds), and
// the run must still learn (the second epoch's mean loss below the first's, as fp32's is).
// About 25 s of CPU time for the two runs.
TEST_CASE("train: train.amp = bf16 on the CPU follows the fp32 loss curve") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  // no Mixup or EMA (fewer moving parts), one small evaluation per epoch (the run is timed)
  const json quiet = {{"aug", {{"mixup", 0.0}, {"cutmix", 0.0}}},
                      {"data", {{"val_subset", 64}}},
                      {"eval", {{"img_sizes", {28}}}},
                      {"train", {{"ema_decay", 0.0}}}};
  json amp_extra = quiet;
  amp_extra["train"]["amp"] = "bf16";
  json off_extra = quiet;
  off_extra["train"]["amp"] = "off";
  Run off = ropevit("train '" + write_config("amp_off", off_extra).string() + "'");
  INFO(off.err);
  REQUIRE(off.code == 0);
  CHECK(contains(off.err, "amp: off (fp32)"));
  Run bf16 = ropevit("train '" + write_config("amp_bf16", amp_extra).string() + "'");
  INFO(bf16.err);
  REQUIRE(bf16.code == 0);
  CHECK(contains(bf16.err, "amp: bf16 autocast"));
  const auto a = records(tmp().path / "amp_off", "train"), b = records(tmp().path / "amp_bf16", "train");
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);
  double worst = 0, first[2] = {0, 0}, last[2] = {0, 0};
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const double la = a[i]["loss"].get<double>(), lb = b[i]["loss"].get<double>();
    CAPTURE(i);
    CHECK(std::abs(lb - la) <= 0.01);
    worst = std::max(worst, std::abs(lb - la));
    differs = differs || la != lb;
    (i < 6 ? first : last)[0] += la / 6;
    (i < 6 ? first : last)[1] += lb / 6;
  }
  CHECK(differs);  // bf16 did run: the curves are not bit-identical
  CHECK(last[0] < first[0]);
  CHECK(last[1] < first[1]);
  MESSAGE("amp bf16 vs fp32 over 12 steps: worst |loss diff| " << worst << "; mean loss epoch 1 -> 2: fp32 "
                                                              << first[0] << " -> " << last[0] << ", bf16 "
                                                              << first[1] << " -> " << last[1]);
}

TEST_CASE("train: a NaN loss stops the run naming the step and the last checkpoint, or is skipped") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  const fs::path stop_cfg = write_config("nan_stop");
  Run stop = ropevit("train '" + stop_cfg.string() + "'", "RV_TEST_NAN_AT_STEP=5");
  CHECK(stop.code == 1);
  CHECK(contains(stop.err, "step 5 (epoch 0): the loss is nan"));
  CHECK(contains(stop.err, "checkpoints/recovery.safetensors"));  // written after step 4
  const auto rec = records(tmp().path / "nan_stop", "train");
  REQUIRE(!rec.empty());
  CHECK(rec.back()["step"] == 5);
  CHECK(rec.back()["loss"].is_null());
  CHECK(rec.back()["nonfinite"]["loss"] == "nan");

  const fs::path skip_cfg = write_config("nan_skip", {{"train", {{"nan_policy", "skip"}}}});
  Run skip = ropevit("train '" + skip_cfg.string() + "'", "RV_TEST_NAN_AT_STEP=5");
  INFO(skip.err);
  REQUIRE(skip.code == 0);
  CHECK(contains(skip.err, "1 steps skipped"));
  const auto all = records(tmp().path / "nan_skip", "train");
  REQUIRE(all.size() == 12);
  CHECK(all[4]["skipped"] == true);
  CHECK(all[5]["nan_skipped"] == 1);
  CHECK(all[11]["loss"].is_number());
}

TEST_CASE("train: configuration errors exit 1 and say what to do") {
  // This suite runs where no GPU is (CI): train.device = cuda says why it cannot.
  const fs::path gpu = write_config("gpu", {{"train", {{"device", "cuda"}}}});
  Run g = ropevit("train '" + gpu.string() + "'");
  CHECK(g.code == 1);
  CHECK(contains(g.err, "train.device = cuda: cuda:0:"));
  CHECK(contains(g.err, "use cpu or auto"));
  const fs::path scenes = write_config("scenes", {{"data", {{"dataset", "scenes"}}}});
  Run b = ropevit("train '" + scenes.string() + "'");
  CHECK(b.code == 1);
  CHECK(contains(b.err, "data.dataset: 'scenes' is a segmentation set; set task = segmentation"));
  // The Fashion-MNIST config pointed at an ImageFolder: its grey mean/std cannot serve RGB images.
  const fs::path folder = write_config("folder", {{"data", {{"dataset", "imagefolder"}}}});
  Run f = ropevit("train '" + folder.string() + "'");
  CHECK(f.code == 1);
  CHECK(contains(f.err, "data.dataset = imagefolder: data.mean and data.std need three values"));
  Run c = ropevit("train");
  CHECK(c.code == 2);
}
