// test_seg_train.cpp: segmentation end to end, as a user runs it: `ropevit make-scenes` writes a
// tiny ADE20k-format set (drawn shapes, no data set needed), `ropevit train` trains a tiny UperNet
// on a ViT RoPE-Mixed backbone for a few iterations (poly schedule, auxiliary head, layer decay),
// `ropevit eval` scores the run whole-image, sliding-window and multi-scale + flip; the run
// folder's files, the log records and the metrics' ranges are checked, and --resume continues.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "data/decode_image.h"
#include "data/seg_palette.h"
#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/rng.h"
#include "tests/support/cli_run.h"
#include "train/config/resolve.h"
#include "train/seg/seg_setup.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using rv::test::contains;
using rv::test::lines;
using rv::test::read_file;

const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_seg_train");
  return d;
}

rv::test::CliRun ropevit(const std::string& args) { return rv::test::ropevit(args, {.env = "", .cwd = RV_SOURCE_DIR}); }

// The scenes once per process: 16 training and 4 validation images of 64 px.
const fs::path& scenes() {
  static const fs::path root = [] {
    const fs::path out = tmp().path / "scenes";
    const auto r = ropevit("make-scenes --out '" + out.string() + "' --images 16 --val-images 4 --size 64 --items shapes");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    return out / "ADEChallengeData2016";
  }();
  return root;
}

// The tiny run over the scenes config: ViT width 32, depth 4, 2 heads, crop 64, heads of 16 / 8
// channels, batch 4, 6 iterations (warmup 2, poly), layer decay 0.75 (exercises the groups).
fs::path write_config(const std::string& name, const json& extra = json::object()) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/scenes_upernet_vit_tiny_rope_mixed.json"},
            {"model", {{"embed_dim", 32}, {"depth", {4}}, {"num_heads", {2}}}},
            {"data", {{"root", scenes().string()}, {"workers", 0}}},
            {"optim", {{"layer_decay", 0.75}}},
            {"sched", {{"warmup_iters", 2}}},
            {"train", {{"iters", 6}, {"batch_size", 4}, {"out_dir", (tmp().path / "runs").string()}, {"run_name", name}}},
            {"seg", {{"crop", 64}, {"channels", 16}, {"aux_channels", 8}, {"stride", 43}}},
            {"log", {{"interval", 1}, {"tensorboard", true}}},
            {"ckpt", {{"recovery_steps", 3}}}};
  c.merge_patch(extra);
  const fs::path p = tmp().path / (name + ".json");
  std::ofstream(p) << c.dump(2);
  return p;
}

std::vector<json> records(const fs::path& run, const std::string& kind) {
  std::vector<json> out;
  for (const auto& l : lines(read_file(run / "log.jsonl"))) {
    json j = json::parse(l);
    if (j.value("kind", "") == kind) out.push_back(j);
  }
  return out;
}

void check_metrics_file(const fs::path& run, int64_t images) {
  const json j = json::parse(read_file(run / "seg_eval.json"));
  for (const char* k : {"mIoU", "mAcc", "aAcc"}) {
    INFO(k);
    REQUIRE(j[k].is_number());
    CHECK(j[k].get<double>() >= 0.0);
    CHECK(j[k].get<double>() <= 100.0);
  }
  CHECK(j["images"] == images);
  REQUIRE(j["per_class"].size() == 10);
  CHECK(j["per_class"][0]["class"] == "T-shirt/top");
  const auto csv = lines(read_file(run / "seg_eval.csv"));
  REQUIRE(csv.size() == 1 + 10 + 2);
  CHECK(csv[0] == "class,IoU,Acc");
  CHECK(csv[11].rfind("mean,", 0) == 0);
  CHECK(csv[12].rfind("all pixels,,", 0) == 0);
}

}  // namespace

// The trained run, once per process (the test cases below share it).
const rv::test::CliRun& trained() {
  static const rv::test::CliRun r = ropevit("train '" + write_config("seg").string() + "'");
  return r;
}

std::vector<json> trained_records() { return records(tmp().path / "runs" / "seg", "train"); }

TEST_CASE("ropevit train: a tiny UperNet on the scenes; files, log, schedule, metrics") {
  const auto& r = trained();
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const fs::path run = tmp().path / "runs" / "seg";
  for (const char* f : {"config.json", "log.jsonl", "model.safetensors", "checkpoints/last.safetensors",
                        "checkpoints/recovery.safetensors", "seg_eval.json", "seg_eval.csv"})
    CHECK_MESSAGE(fs::exists(run / f), f);
  CHECK(fs::is_directory(run / "tb"));
  CHECK(contains(r.out, "mIoU"));
  CHECK(contains(r.out, "Sandal"));  // the per-class table
  // The log: one train record per step with the decode and auxiliary losses, the LR following
  // warmup then poly (step 1: warmup_lr; step 3 = base; then a line to 0 at step 6), and the
  // val record at the end.
  const auto train = records(run, "train");
  REQUIRE(train.size() == 6);
  for (const auto& t : train) {
    CHECK(std::isfinite(t["loss"].get<double>()));
    CHECK(t["loss"].get<double>() ==
          doctest::Approx(t["decode_loss"].get<double>() + t["aux_loss"].get<double>()).epsilon(1e-6));
  }
  CHECK(train[0]["lr"].get<double>() == doctest::Approx(1e-6));
  CHECK(train[2]["lr"].get<double>() == doctest::Approx(1e-3));
  CHECK(train[4]["lr"].get<double>() == doctest::Approx(1e-3 * 2.0 / 4.0));
  const auto val = records(run, "val");
  REQUIRE(val.size() == 1);
  CHECK(val[0]["step"] == 6);
  check_metrics_file(run, 4);
  // The weights file holds UperNet's names.
  const auto w = rv::SafetensorsFile::open((run / "model.safetensors").string());
  bool decode = false, aux = false, backbone = false;
  for (const auto& n : w.names()) {
    decode |= n.rfind("decode_head.", 0) == 0;
    aux |= n.rfind("auxiliary_head.", 0) == 0;
    backbone |= n.rfind("backbone.blocks.3.", 0) == 0;
  }
  CHECK((decode && aux && backbone));
}

TEST_CASE("ropevit eval: whole image gives the training run's numbers; slide and multi-scale + flip give valid ones") {
  REQUIRE_MESSAGE(trained().code == 0, trained().err);
  const fs::path run = tmp().path / "runs" / "seg";
  {
    const json trained = json::parse(read_file(run / "seg_eval.json"));
    auto e = ropevit("eval '" + run.string() + "'");
    REQUIRE_MESSAGE(e.code == 0, e.err);
    const json whole = json::parse(read_file(run / "seg_eval.json"));
    CHECK(whole["mIoU"] == trained["mIoU"]);
    CHECK(whole["aAcc"] == trained["aAcc"]);
    e = ropevit("eval '" + run.string() + "' --mode slide");
    REQUIRE_MESSAGE(e.code == 0, e.err);
    CHECK(contains(e.out, "slide"));
    check_metrics_file(run, 4);
    CHECK(json::parse(read_file(run / "seg_eval.json"))["mode"] == "slide");
    e = ropevit("eval '" + run.string() + "' --scales 0.75,1.0,1.25 --flip --checkpoint '" +
                (run / "checkpoints" / "last.safetensors").string() + "'");
    REQUIRE_MESSAGE(e.code == 0, e.err);
    check_metrics_file(run, 4);
    const json ms = json::parse(read_file(run / "seg_eval.json"));
    CHECK(ms["flip"] == true);
    CHECK(ms["scales"].size() == 3);
    // Usage errors name the option.
    e = ropevit("eval '" + run.string() + "' --mode tiles");
    CHECK(e.code != 0);
    CHECK(contains(e.err, "--mode: expected whole or slide, got 'tiles'"));
    e = ropevit("eval '" + run.string() + "' --img-size 64");
    CHECK(e.code != 0);
    CHECK(contains(e.err, "segmentation runs take --mode, --scales and --flip"));
  }
}

TEST_CASE("ropevit eval --pred-dir: label PNGs = the prediction + 1 at the original size; overlays blend 0.5") {
  REQUIRE_MESSAGE(trained().code == 0, trained().err);
  const fs::path run = tmp().path / "runs" / "seg", preds = tmp().path / "preds";
  const auto e = ropevit("eval '" + run.string() + "' --checkpoint '" + (run / "model.safetensors").string() +
                         "' --pred-dir '" + preds.string() + "'");
  REQUIRE_MESSAGE(e.code == 0, e.err);
  CHECK(contains(e.out, "wrote 4 label maps"));
  // The same predictions computed here from the saved weights, as seg_evaluate does (whole image,
  // resized to the label map's size, argmax).
  const auto rc = rv::config::resolve_config((run / "config.json").string());
  rv::models::seg::UperNet net(rv::train::seg::seg_model_config(rc.config));
  {
    rv::nn::StateDict w;
    const auto f = rv::SafetensorsFile::open((run / "model.safetensors").string());
    for (const auto& n : f.names()) w.insert(n, f.tensor(n));
    net.load_state_dict(w);
  }
  net.train(false);
  rv::autograd::NoGradGuard no_grad;
  const auto val = rv::train::seg::seg_dataset(rc.config, false);
  const auto palette = rv::data::generated_palette(10);
  REQUIRE(val->size() == 4);
  for (int64_t i = 0; i < val->size(); ++i) {
    const std::string img_path = val->files().image_path(i);
    const std::string stem = fs::path(img_path).stem().string();
    INFO(stem);
    rv::Generator gen(0, 0);
    const rv::data::Sample s = val->get(i, gen);
    rv::models::seg::SegInferenceOptions opt;
    opt.out_size = {s.label_map.size(0), s.label_map.size(1)};
    const rv::Tensor pred = net.predict_labels(s.image.unsqueeze(0), opt).select(0, 0).contiguous();  // (H, W) i64
    const rv::data::Image orig = rv::data::read_image(img_path);
    const rv::data::Image labels = rv::data::read_png_indices((preds / "labels" / (stem + ".png")).string());
    const rv::data::Image over = rv::data::read_image((preds / "overlays" / (stem + ".png")).string());
    REQUIRE(labels.channels == 1);
    REQUIRE(labels.height == orig.height);
    REQUIRE(labels.width == orig.width);
    REQUIRE(over.height == orig.height);
    REQUIRE(over.width == orig.width);
    REQUIRE(pred.size(0) == orig.height);
    REQUIRE(pred.size(1) == orig.width);
    const int64_t* p = pred.data<int64_t>();
    int64_t label_bad = 0, over_bad = 0;
    for (int64_t k = 0; k < int64_t(orig.height) * orig.width; ++k) {
      label_bad += labels.pixels[size_t(k)] != p[k] + 1;
      for (int c = 0; c < 3; ++c)
        over_bad += over.pixels[size_t(3 * k + c)] != ((orig.pixels[size_t(3 * k + c)] + palette[size_t(p[k])][size_t(c)]) >> 1);
    }
    CHECK(label_bad == 0);
    CHECK(over_bad == 0);
  }
  // No stray files: two per image.
  int64_t files = 0;
  for (const auto& d : fs::recursive_directory_iterator(preds)) files += d.is_regular_file();
  CHECK(files == 8);

}

TEST_CASE("ropevit train --resume: from the recovery checkpoint at step 3, the same losses as the whole run") {
  REQUIRE_MESSAGE(trained().code == 0, trained().err);
  const fs::path run = tmp().path / "runs" / "seg";
  const auto train = trained_records();
  {
    const fs::path cfg2 = write_config("seg_resumed");
    const fs::path run2 = tmp().path / "runs" / "seg_resumed";
    fs::create_directories(run2 / "checkpoints");
    fs::copy_file(run / "checkpoints" / "recovery.safetensors", run2 / "checkpoints" / "recovery.safetensors");
    const auto r2 = ropevit("train '" + cfg2.string() + "' --resume auto");
    REQUIRE_MESSAGE(r2.code == 0, r2.err);
    CHECK(contains(r2.err, "resumed from"));
    const auto t2 = records(run2, "train");
    REQUIRE(t2.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(t2[i]["step"] == train[3 + i]["step"]);
      CHECK(t2[i]["loss"].get<double>() == train[3 + i]["loss"].get<double>());
    }
  }

}

TEST_CASE("ropevit train: segmentation errors: cuda is not implemented yet, a data root without the layout") {
  const fs::path cfg = write_config("seg_errors");
  {
    auto e = ropevit("train '" + cfg.string() + "' train.device=cuda train.run_name=seg_cuda");
    CHECK(e.code != 0);
    CHECK(contains(e.err, "segmentation training on the GPU is not implemented yet"));
    e = ropevit("train '" + cfg.string() + "' data.root=/nonexistent train.run_name=seg_noroot");
    CHECK(e.code != 0);
    CHECK(contains(e.err, "/nonexistent"));
  }
}
