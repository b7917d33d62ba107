// test_seg_train.cpp: segmentation end to end, as a user runs it: `ropevit make-scenes` writes a
// tiny ADE20k-format set (drawn shapes, no data set needed), `ropevit train` trains a tiny UperNet
// on a ViT RoPE-Mixed backbone for a few iterations (poly schedule, auxiliary head, layer decay),
// `ropevit eval` scores the run whole-image, sliding-window and multi-scale + flip; the run
// folder's files, the log records and the metrics' ranges are checked, and --resume continues.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "data/decode_image.h"
#include "data/seg_palette.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/io/safetensors.h"
#include "engine/rng.h"
#include "tests/support/cli_run.h"
#include "train/config/resolve.h"
#include "train/log/event_reader.h"
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
// channels, batch 4, 6 iterations (warmup 2, poly), layer decay 0.75 (exercises the groups),
// evaluation every 2 iterations (steps 2, 4, 6), a recovery checkpoint at step 3, an EMA of decay
// 0.9 (short enough to differ from the weights within 6 steps).
fs::path write_config(const std::string& name, const json& extra = json::object()) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/scenes_upernet_vit_tiny_rope_mixed.json"},
            {"model", {{"embed_dim", 32}, {"depth", {4}}, {"num_heads", {2}}}},
            {"data", {{"root", scenes().string()}, {"workers", 0}}},
            {"optim", {{"layer_decay", 0.75}}},
            {"sched", {{"warmup_iters", 2}}},
            {"train", {{"iters", 6}, {"batch_size", 4}, {"ema_decay", 0.9}, {"out_dir", (tmp().path / "runs").string()},
                       {"run_name", name}}},
            {"seg", {{"crop", 64}, {"channels", 16}, {"aux_channels", 8}, {"stride", 43}}},
            {"log", {{"interval", 1}, {"tensorboard", true}}},
            {"eval", {{"interval", 2}}},
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
                        "checkpoints/recovery.safetensors", "checkpoints/best.safetensors", "seg_eval.json",
                        "seg_eval.csv", "summary.csv"})
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
  check_metrics_file(run, 4);
}

TEST_CASE("evaluation during training: every eval.interval steps into log.jsonl, TensorBoard, summary.csv; best") {
  const auto& r = trained();
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const fs::path run = tmp().path / "runs" / "seg";
  const auto train = records(run, "train");
  REQUIRE(train.size() == 6);
  // Steps 2, 4, 6, whole image; the last one is the final seg_eval.json (seg.mode = whole).
  const auto val = records(run, "val");
  REQUIRE(val.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(val[i]["step"] == int64_t(2 * (i + 1)));
    CHECK(val[i]["mode"] == "whole");
    CHECK(val[i]["images"] == 4);
    for (const char* k : {"mIoU", "mAcc", "aAcc"}) {
      CHECK(val[i][k].get<double>() >= 0.0);
      CHECK(val[i][k].get<double>() <= 100.0);
    }
  }
  const json final_eval = json::parse(read_file(run / "seg_eval.json"));
  CHECK(std::fabs(final_eval["mIoU"].get<double>() - val[2]["mIoU"].get<double>()) <= 0.005);  // the file rounds to 0.01
  CHECK(contains(r.err, "step 4: mIoU "));
  // summary.csv: a row per evaluation; train_loss is the mean step loss since the previous one.
  const auto csv = lines(read_file(run / "summary.csv"));
  REQUIRE(csv.size() == 4);
  CHECK(csv[0].rfind("step,train_loss,mIoU,mAcc,aAcc,mIoU_ema,mAcc_ema,aAcc_ema,lr", 0) == 0);
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> cells;
    std::stringstream in(csv[i + 1]);
    for (std::string c; std::getline(in, c, ',');) cells.push_back(c);
    REQUIRE(cells.size() == 9);
    CHECK(std::stoll(cells[0]) == int64_t(2 * (i + 1)));
    const double mean = (train[2 * i]["loss"].get<double>() + train[2 * i + 1]["loss"].get<double>()) / 2.0;
    CHECK(std::stod(cells[1]) == doctest::Approx(mean).epsilon(1e-9));
    CHECK(std::stod(cells[2]) == doctest::Approx(val[i]["mIoU"].get<double>()).epsilon(1e-9));
  }
  // TensorBoard: val/mIoU, val/mAcc, val/aAcc at the three steps.
  const auto tb = rv::runlog::read_scalars((run / "tb").string());
  for (const char* tag : {"val/mIoU", "val/mAcc", "val/aAcc"}) {
    INFO(tag);
    REQUIRE(tb.count(tag) == 1);
    REQUIRE(tb.at(tag).size() == 3);
    CHECK(tb.at(tag)[2].step == 6);
  }
  CHECK(tb.at("val/mIoU")[1].value == doctest::Approx(val[1]["mIoU"].get<double>()).epsilon(1e-5));
  // best.safetensors: the first evaluation with the highest mIoU (ckpt.best_metric = mIoU).
  size_t best = 0;
  for (size_t i = 1; i < 3; ++i)
    if (val[i]["mIoU"].get<double>() > val[best]["mIoU"].get<double>()) best = i;
  const auto meta = json::parse(
      rv::SafetensorsFile::open((run / "checkpoints" / "best.safetensors").string()).metadata().at("ropevit_checkpoint"));
  CHECK(meta["kind"] == "best");
  CHECK(meta["step"] == val[best]["step"]);
  CHECK(meta["best_epoch"] == val[best]["step"]);  // segmentation: the step of the best evaluation
  CHECK(meta["best_metric"].get<double>() == doctest::Approx(val[best]["mIoU"].get<double>()).epsilon(1e-9));
}

TEST_CASE("EMA for segmentation: evaluated with the model, saved in checkpoints, scored by eval --ema") {
  const auto& r = trained();
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const fs::path run = tmp().path / "runs" / "seg";
  const auto val = records(run, "val");
  REQUIRE(val.size() == 3);
  for (const auto& v : val)
    for (const char* k : {"mIoU_ema", "mAcc_ema", "aAcc_ema"}) {
      INFO(k);
      REQUIRE(v.contains(k));
      CHECK(v[k].get<double>() >= 0.0);
      CHECK(v[k].get<double>() <= 100.0);
    }
  CHECK(contains(r.err, "| EMA mIoU "));
  // The checkpoint holds ema.* for every model entry, and the EMA differs from the weights
  // (decay 0.9 over 6 steps) but not in the integer BatchNorm counters (copied).
  const auto f = rv::SafetensorsFile::open((run / "checkpoints" / "last.safetensors").string());
  int64_t model_entries = 0, ema_entries = 0, float_differ = 0;
  for (const auto& n : f.names()) {
    if (n.rfind("optimizer.", 0) == 0) continue;
    if (n.rfind("ema.", 0) == 0) {
      ++ema_entries;
      const rv::Tensor e = f.tensor(n), m = f.tensor(n.substr(4));
      if (e.dtype() == rv::DType::f32) {
        const rv::Tensor ec = e.contiguous(), mc = m.contiguous();
        bool same = true;
        for (int64_t i = 0; i < ec.numel(); ++i) same &= ec.data<float>()[i] == mc.data<float>()[i];
        float_differ += !same;
      } else if (e.dtype() == rv::DType::i64) {
        CHECK_MESSAGE(e.contiguous().data<int64_t>()[0] == m.contiguous().data<int64_t>()[0], n);
      }
    } else {
      ++model_entries;
    }
  }
  CHECK(ema_entries == model_entries);
  CHECK(float_differ > 0);
  // The final EMA numbers, and eval --ema gives them again from the checkpoint.
  const json trained_ema = json::parse(read_file(run / "seg_eval_ema.json"));
  CHECK(trained_ema["ema"] == true);
  CHECK(std::fabs(trained_ema["mIoU"].get<double>() - val[2]["mIoU_ema"].get<double>()) <= 0.005);
  const auto e = ropevit("eval '" + run.string() + "' --ema");
  REQUIRE_MESSAGE(e.code == 0, e.err);
  CHECK(contains(e.out, "EMA"));
  CHECK(json::parse(read_file(run / "seg_eval_ema.json"))["mIoU"] == trained_ema["mIoU"]);
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
    CHECK(contains(e.err, "segmentation runs take --mode, --scales, --flip, --ema and --pred-dir"));
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
    // The evaluations after the resume point (steps 4 and 6) are the same too, and so is the
    // choice of the best one (the recovery file carried step 2's result).
    const auto v1 = records(run, "val"), v2 = records(run2, "val");
    REQUIRE(v2.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(v2[i]["step"] == v1[1 + i]["step"]);
      CHECK(v2[i]["mIoU"].get<double>() == v1[1 + i]["mIoU"].get<double>());
    }
    auto best_of = [](const fs::path& r) {
      return json::parse(rv::SafetensorsFile::open((r / "checkpoints" / "last.safetensors").string())
                             .metadata()
                             .at("ropevit_checkpoint"));
    };
    CHECK(best_of(run)["best_epoch"] == best_of(run2)["best_epoch"]);
    CHECK(best_of(run)["best_metric"] == best_of(run2)["best_metric"]);
    // Bit-identical end state with EMA on: every tensor of last.safetensors (weights, ema.*,
    // optimizer moments) equal byte for byte.
    const auto a = rv::SafetensorsFile::open((run / "checkpoints" / "last.safetensors").string());
    const auto b = rv::SafetensorsFile::open((run2 / "checkpoints" / "last.safetensors").string());
    REQUIRE(a.names() == b.names());
    int64_t differ = 0, ema_tensors = 0;
    for (const auto& n : a.names()) {
      const rv::Tensor x = a.tensor(n).contiguous(), y = b.tensor(n).contiguous();
      REQUIRE(x.numel() == y.numel());
      REQUIRE(x.dtype() == y.dtype());
      differ += std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * x.itemsize()) != 0;
      ema_tensors += n.rfind("ema.", 0) == 0;
    }
    CHECK(ema_tensors > 0);
    CHECK(differ == 0);
    for (size_t i = 0; i < 2; ++i) CHECK(v2[i]["mIoU_ema"].get<double>() == v1[1 + i]["mIoU_ema"].get<double>());
  }

}

TEST_CASE("ropevit train: segmentation errors: cuda without a GPU, a data root without the layout") {
  const fs::path cfg = write_config("seg_errors");
  {
    auto e = ropevit("train '" + cfg.string() + "' train.device=cuda train.run_name=seg_cuda");
    if (rv::backend::device_count(rv::DeviceType::cuda) == 0) {  // as the classification trainer says it
      CHECK(e.code != 0);
      CHECK(contains(e.err, "train.device = cuda: "));
      CHECK(contains(e.err, "use cpu or auto"));
    }
    e = ropevit("train '" + cfg.string() + "' data.root=/nonexistent train.run_name=seg_noroot");
    CHECK(e.code != 0);
    CHECK(contains(e.err, "/nonexistent"));
  }
}
