// test_train_imagefolder.cpp: `ropevit train` and `ropevit eval` on an ImageNet-style folder, run
// as a user runs them: the real DeiT-III recipe (configs/deit3_vit_s_rope_mixed.json: LAMB, BCE,
// 3-Augment, repeated augmentation, Mixup/CutMix) with command-line overrides that shrink the
// model to one block of 32 channels and the data to a generated folder of 3 classes x 6 JPEGs
// (40x48 px) for training and 3 x 2 for validation. Checks that it trains, writes the run folder,
// that `ropevit eval RUN --img-size 32,48` prints the resolution table, and the errors a user
// meets first: a missing data.root, an empty split, class folders that differ between the
// splits, keys the data set cannot honour; and a truncated training file under
// data.on_bad_sample = stop (the run stops naming it) and skip (it trains, logs the count).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/image_encode.h"
#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using rv::test::contains;
using rv::test::read_file;
using Run = rv::test::CliRun;

const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_train_imagefolder");
  return d;
}

const std::vector<std::string> kClasses = {"n01440764", "n01443537", "n01484850"};

// root/<split>/<wnid>/<wnid>_<i>.JPEG: a 40x48 JPEG whose colour says its class (red, green or
// blue, with a gradient and a per-image shift so no two files are equal).
void write_split(const fs::path& root, const std::string& split, int per_class,
                 const std::vector<std::string>& classes = kClasses) {
  constexpr int H = 40, W = 48;
  for (size_t c = 0; c < classes.size(); ++c) {
    const fs::path dir = root / split / classes[c];
    fs::create_directories(dir);
    for (int i = 0; i < per_class; ++i) {
      std::vector<uint8_t> rgb(size_t(H) * W * 3);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          for (int ch = 0; ch < 3; ++ch)
            rgb[(size_t(y) * W + x) * 3 + ch] =
                uint8_t(size_t(ch) == c ? 200 + (x + 7 * i) % 56 : (y * 3 + x + 11 * i) % 90);
      const std::string jpg = rv::data::encode_rgb_jpeg(rgb.data(), H, W, 90);
      std::ofstream(dir / (classes[c] + "_" + std::to_string(i) + ".JPEG"), std::ios::binary) << jpg;
    }
  }
}

// The recipe, shrunk: every override a user would type to try the command on a laptop.
std::string tiny_args(const fs::path& root, const std::string& run_name) {
  return "configs/deit3_vit_s_rope_mixed.json data.root='" + root.string() +
         "' model.img_size=32 model.patch_size=8 model.depth=1 model.embed_dim=32 model.num_heads=2 "
         "data.num_classes=3 data.workers=2 train.epochs=1 sched.warmup_epochs=0.5 train.batch_size=4 eval.batch_size=4 "
         "eval.img_sizes=[32,48] log.interval=1 log.progress=plain train.out_dir='" +
         (tmp().path / "runs").string() + "' train.run_name=" + run_name;
}

// Every run keeps its file-list cache in the scratch folder, not in the user's ~/.cache.
Run ropevit(const std::string& args) {
  return rv::test::ropevit(args, {.env = "ROPEVIT_CACHE_DIR='" + (tmp().path / "cache").string() + "'",
                                  .cwd = RV_SOURCE_DIR});
}

bool have_encoder() {
  if (rv::data::have_jpeg_encoder()) return true;
  MESSAGE("skipped: built without a JPEG encoder (stb_image_write)");
  return false;
}

}  // namespace

TEST_CASE("train + eval on an ImageNet-style folder with the DeiT-III recipe, shrunk") {
  if (!have_encoder()) return;
  const fs::path root = tmp().path / "imagenet";
  write_split(root, "train", 6);
  write_split(root, "val", 2);

  Run t = ropevit("train " + tiny_args(root, "tiny"));
  INFO("stdout: " << t.out);
  INFO("stderr: " << t.err);
  REQUIRE(t.code == 0);
  const fs::path run = tmp().path / "runs" / "tiny";
  // The data set as the log describes it: 18 files, 3 classes, the recipe's 3-Augment.
  CHECK(contains(t.out + t.err, "imagefolder"));
  CHECK(contains(t.out + t.err, "18 images, 3 classes"));
  CHECK(contains(t.out + t.err, "3-Augment"));
  for (const char* f : {"config.json", "log.jsonl", "summary.csv", "model.safetensors", "eval_resolutions.csv",
                        "checkpoints/last.safetensors"})
    CHECK_MESSAGE(fs::exists(run / f), f);
  // One epoch in batches of 4 (drop_last): 4 steps, each a finite loss. Repeated augmentation
  // (the recipe's data.aug_repeats = 3) keeps DeiT's epoch length, the data set's size.
  int steps = 0;
  std::istringstream log(read_file(run / "log.jsonl"));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") != "train") continue;
    ++steps;
    CHECK(std::isfinite(j["loss"].get<double>()));
  }
  CHECK(steps == 4);
  const auto cfg = nlohmann::json::parse(read_file(run / "config.json"));
  CHECK(cfg["data"]["dataset"] == "imagefolder");
  CHECK(cfg["aug"]["mixup"] == 0.8);  // Mixup / CutMix stayed on

  Run e = ropevit("eval '" + run.string() + "' --img-size 32,48");
  INFO("eval stderr: " << e.err);
  REQUIRE(e.code == 0);
  CHECK(contains(e.out, "img_size"));
  int rows = 0;
  for (const auto& line : rv::test::lines(e.out)) {
    std::istringstream in(line);
    long long size = 0, samples = 0;
    double top1 = 0, top5 = 0, loss = 0;
    if (in >> size >> top1 >> top5 >> loss >> samples) {
      CHECK((size == 32 || size == 48));
      CHECK(samples == 6);  // every validation image once
      CHECK(top5 == doctest::Approx(100.0));  // 3 classes: the top 5 holds them all
      ++rows;
    }
  }
  CHECK(rows == 2);
}

TEST_CASE("imagefolder errors name the path, the key and what was expected") {
  if (!have_encoder()) return;
  const fs::path root = tmp().path / "errors";
  write_split(root, "train", 1);
  write_split(root, "val", 1, {"n01440764", "n01443537", "n09999999"});
  fs::create_directories(root / "empty");

  const fs::path missing = tmp().path / "no_such_imagenet";
  Run m = ropevit("train " + tiny_args(missing, "missing"));
  CHECK(m.code != 0);
  CHECK(contains(m.err, "data.root = '" + missing.string() + "': no such folder"));
  CHECK(contains(m.err, missing.string() + "/train/<class>/<images>"));

  Run s = ropevit("train " + tiny_args(root, "nosplit") + " data.train_split=training");
  CHECK(s.code != 0);
  CHECK(contains(s.err, "data.train_split = 'training': no folder " + (root / "training").string()));

  Run em = ropevit("train " + tiny_args(root, "empty") + " data.train_split=empty");
  CHECK(em.code != 0);
  CHECK(contains(em.err, "data.train_split = 'empty': ImageFolder " + (root / "empty").string()));
  CHECK(contains(em.err, "no class folders"));

  Run diff = ropevit("train " + tiny_args(root, "diff"));
  CHECK(diff.code != 0);
  CHECK(contains(diff.err, "data.val_split = 'val'"));
  CHECK(contains(diff.err, "class 2 is 'n01484850' in training but 'n09999999' here"));

  Run grey = ropevit("train " + tiny_args(root, "grey") + " data.mean=[0.5] data.std=[0.5]");
  CHECK(grey.code != 0);
  CHECK(contains(grey.err, "data.mean and data.std need three values"));

  Run both = ropevit("train " + tiny_args(root, "both") + " aug.randaugment=rand-m9-mstd0.5-inc1");
  CHECK(both.code != 0);
  CHECK(contains(both.err, "aug.randaugment"));  // refused by the config checks already
  CHECK(contains(both.err, "are alternatives"));

  Run big = ropevit("train " + tiny_args(root, "big") + " data.train_subset=4");
  CHECK(big.code != 0);
  CHECK(contains(big.err, "data.train_split = 'train', data.train_subset = 4: ImageFolder " +
                          (root / "train").string() + ": subset = 4 but the folder has 3 images"));
}

TEST_CASE("a truncated training JPEG: data.on_bad_sample = stop names it; skip trains through and logs the count") {
  if (!have_encoder()) return;
  const fs::path root = tmp().path / "bad_sample";
  write_split(root, "train", 6);
  write_split(root, "val", 2);
  const fs::path broken = root / "train" / kClasses[1] / (kClasses[1] + "_2.JPEG");
  const std::string bytes = read_file(broken);
  std::ofstream(broken, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() * 2 / 3);
  // No repeated augmentation and batches that use all 18 images: the file is read exactly once.
  const std::string once = " data.aug_repeats=0 train.batch_size=6";

  Run stop = ropevit("train " + tiny_args(root, "bad_stop") + once);
  CHECK(stop.code != 0);
  CHECK(contains(stop.err, broken.string() + ": corrupt or truncated JPEG"));

  Run skip = ropevit("train " + tiny_args(root, "bad_skip") + once + " data.on_bad_sample=skip");
  INFO("stderr: " << skip.err);
  REQUIRE(skip.code == 0);
  CHECK(contains(skip.err, broken.string() + ": corrupt or truncated JPEG"));
  CHECK(contains(skip.err, "(skipped: data.on_bad_sample = skip; its row holds sample "));
  CHECK(contains(skip.err, "epoch 0: 1 training samples failed to load and were replaced"));
  int data_records = 0;
  std::istringstream log(read_file(tmp().path / "runs" / "bad_skip" / "log.jsonl"));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == "train") CHECK(j.value("bad_samples", 0) <= 1);
    if (j.value("kind", "") != "data") continue;
    ++data_records;
    CHECK(j["epoch"] == 0);
    CHECK(j["bad_samples"] == 1);
    CHECK(j["bad_samples_total"] == 1);
  }
  CHECK(data_records == 1);

  Run bad_key = ropevit("train " + tiny_args(root, "bad_key") + " data.on_bad_sample=ignore");
  CHECK(bad_key.code != 0);
  CHECK(contains(bad_key.err, "data.on_bad_sample"));
}
