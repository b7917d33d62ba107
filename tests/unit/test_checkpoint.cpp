// test_checkpoint.cpp: training checkpoints (train/checkpoint.h): a round trip of model, EMA,
// optimizer state and metadata; every load error (truncated file, not a checkpoint, another
// model, missing EMA or optimizer state) and what it says; finding the newest valid one; export.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/io/safetensors.h"
#include "engine/ops/loss.h"
#include "engine/optim/adamw.h"
#include "models/registry.h"
#include "tests/support/check.h"
#include "train/checkpoint.h"
#include "train/param_groups.h"

using namespace rv;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("rv_ckpt_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::shared_ptr<models::Model> tiny(int64_t width = 16, uint64_t seed = 0) {
  return models::create_model("vit_tiny_patch16_rope_mixed_224",
                              {{"img_size", "8"}, {"patch_size", "4"}, {"embed_dim", std::to_string(width)},
                               {"depth", "1"}, {"num_heads", "2"}, {"num_classes", "3"}, {"seed", std::to_string(seed)}});
}

std::unique_ptr<optim::AdamW> adamw(models::Model& m) {
  return std::make_unique<optim::AdamW>(train::make_param_groups(m, 0.05, 0.8).groups, optim::AdamWOptions{.lr = 1e-2});
}

void one_step(models::Model& m, optim::Optimizer& opt) {
  Tensor loss = cross_entropy(m.forward(test::test_tensor({2, 3, 8, 8}, 9)), from_vector(std::vector<int64_t>{0, 2}, {2}));
  loss.backward();
  opt.step();
  opt.zero_grad();
}

train::CheckpointMeta some_meta() {
  train::CheckpointMeta m;
  m.kind = "recovery";
  m.model = "vit_tiny_patch16_rope_mixed_224";
  m.epoch = 2, m.epoch_batches = 6, m.step = 22, m.seed = 5, m.dropout_offset = 1234;
  m.best_metric = 81.25, m.best_epoch = 1, m.nan_skipped = 1;
  m.epoch_loss_sum = 0.1 + 0.2, m.epoch_loss_steps = 3;  // not a short decimal: must come back exactly
  m.config = {{"train", {{"seed", 5}}}};
  return m;
}

void expect_same_state(const nn::StateDict& a, const nn::StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    REQUIRE(b.contains(name));
    CHECK(b.at(name).to_double_vector() == t.to_double_vector());
  }
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}
std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("checkpoint: model, EMA, optimizer state and metadata come back exactly") {
  TempDir tmp;
  auto model = tiny(), ema = tiny(16, 1);
  auto opt = adamw(*model);
  one_step(*model, *opt);
  one_step(*model, *opt);
  const std::string path = (tmp.path / "checkpoints" / "last.safetensors").string();
  train::save_checkpoint(path, *model, ema.get(), opt.get(), some_meta());
  CHECK(fs::exists(path));

  const train::LoadedCheckpoint c = train::read_checkpoint(path);
  CHECK(train::meta_to_json(c.meta) == train::meta_to_json(some_meta()));
  CHECK(c.meta.epoch_loss_sum == 0.1 + 0.2);
  // timm names in the file, EMA and optimizer prefixed
  const SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.contains("blocks.0.attn.qkv.weight"));
  CHECK(f.contains("ema.blocks.0.attn.qkv.weight"));
  CHECK(f.contains("optimizer.state.0.exp_avg"));

  auto model2 = tiny(16, 7), ema2 = tiny(16, 8);
  auto opt2 = adamw(*model2);
  train::restore_checkpoint(c, *model2, ema2.get(), opt2.get());
  expect_same_state(model->state_dict(), model2->state_dict());
  expect_same_state(ema->state_dict(), ema2->state_dict());
  expect_same_state(opt->state_dict(), opt2->state_dict());
  // and they keep training identically
  one_step(*model, *opt);
  one_step(*model2, *opt2);
  expect_same_state(model->state_dict(), model2->state_dict());
}

TEST_CASE("checkpoint: load errors say why") {
  TempDir tmp;
  auto model = tiny();
  auto opt = adamw(*model);
  const fs::path good = tmp.path / "good.safetensors";
  train::save_checkpoint(good.string(), *model, nullptr, opt.get(), some_meta());

  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(train::read_checkpoint((tmp.path / "nope.safetensors").string()),
                         doctest::Contains("does not exist"), std::runtime_error);
  }
  SUBCASE("truncated file") {
    const std::string bytes = read_bytes(good);
    const fs::path cut = tmp.path / "cut.safetensors";
    write_bytes(cut, bytes.substr(0, bytes.size() - 100));
    CHECK_THROWS_WITH_AS(train::read_checkpoint(cut.string()), doctest::Contains("cut.safetensors"),
                         std::runtime_error);
  }
  SUBCASE("a weights file, not a checkpoint") {
    const fs::path w = tmp.path / "weights.safetensors";
    save_safetensors(w.string(), NamedTensors{{"x", zeros({2})}});
    CHECK_THROWS_WITH_AS(train::read_checkpoint(w.string()), doctest::Contains("not a ropevit checkpoint"),
                         std::runtime_error);
  }
  SUBCASE("another model: names and shapes listed, nothing changed") {
    auto wide = tiny(24);
    auto wide_opt = adamw(*wide);
    const std::vector<double> before = wide->parameter("head.weight").to_double_vector();
    const train::LoadedCheckpoint c = train::read_checkpoint(good.string());
    try {
      train::restore_checkpoint(c, *wide, nullptr, wide_opt.get());
      FAIL("no error");
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("does not fit") != std::string::npos);
      INFO(msg);
      CHECK(msg.find("shape of cls_token: file [1, 1, 16], model [1, 1, 24]") != std::string::npos);
      CHECK(msg.find("more") != std::string::npos);  // the list is cut at 12 lines
    }
    CHECK(wide->parameter("head.weight").to_double_vector() == before);
    const std::string report = train::state_mismatch(c.model, *tiny(16));
    CHECK(report.empty());
  }
  SUBCASE("missing and unexpected names") {
    nn::StateDict s = model->state_dict();
    s.erase("norm.weight");
    s.insert("extra.weight", zeros({4}));
    const std::string r = train::state_mismatch(s, *model);
    CHECK(r.find("missing norm.weight [16]") != std::string::npos);
    CHECK(r.find("unexpected extra.weight [4]") != std::string::npos);
  }
  SUBCASE("no EMA in the file when the run keeps one") {
    auto ema = tiny();
    CHECK_THROWS_WITH_AS(train::restore_checkpoint(train::read_checkpoint(good.string()), *model, ema.get(), opt.get()),
                         doctest::Contains("no EMA weights"), std::runtime_error);
  }
  SUBCASE("no optimizer state") {
    const fs::path p = tmp.path / "noopt.safetensors";
    train::save_checkpoint(p.string(), *model, nullptr, nullptr, some_meta());
    CHECK_THROWS_WITH_AS(train::restore_checkpoint(train::read_checkpoint(p.string()), *model, nullptr, opt.get()),
                         doctest::Contains("no optimizer state"), std::runtime_error);
  }
  SUBCASE("an optimizer over other groups") {
    optim::AdamW other(optim::weight_decay_groups(model->named_parameters(), 0.05));  // 2 groups, not LLRD's
    CHECK_THROWS_WITH_AS(train::restore_checkpoint(train::read_checkpoint(good.string()), *model, nullptr, &other),
                         doctest::Contains("optimizer state does not fit"), std::runtime_error);
  }
  SUBCASE("metadata of another version or missing a field") {
    nlohmann::json j = train::meta_to_json(some_meta());
    j["version"] = 99;
    CHECK_THROWS_WITH_AS(train::meta_from_json(j, "x"), doctest::Contains("version 99"), std::runtime_error);
    train::CheckpointMeta nan_best = some_meta();
    nan_best.best_metric = std::nan("");  // a diverged run's eval loss
    j = train::meta_to_json(nan_best);
    CHECK(j["best_metric"].is_null());
    CHECK(std::isnan(train::meta_from_json(nlohmann::json::parse(j.dump()), "x").best_metric));
    // A file from before multi-rank training: one rank, position = micro-batches x batch size.
    j = train::meta_to_json(some_meta());
    j.erase("epoch_samples");
    j.erase("world_size");
    j["config"]["train"]["batch_size"] = 32;
    const train::CheckpointMeta old = train::meta_from_json(j, "x");
    CHECK(old.world_size == 1);
    CHECK(old.epoch_samples == 6 * 32);
    j = train::meta_to_json(some_meta());
    j.erase("step");
    CHECK_THROWS_WITH_AS(train::meta_from_json(j, "x"), doctest::Contains("\"step\""), std::runtime_error);
  }
}

TEST_CASE("checkpoint: find_latest_checkpoint takes the valid one with the most steps") {
  TempDir tmp;
  auto model = tiny();
  const fs::path dir = tmp.path / "checkpoints";
  CHECK(!train::find_latest_checkpoint(dir.string()));  // no folder
  auto meta = some_meta();
  meta.step = 8;
  train::save_checkpoint((dir / "last.safetensors").string(), *model, nullptr, nullptr, meta);
  meta.step = 12;
  train::save_checkpoint((dir / "recovery.safetensors").string(), *model, nullptr, nullptr, meta);
  CHECK(train::find_latest_checkpoint(dir.string()) == (dir / "recovery.safetensors").string());
  // a newer-looking but truncated one is skipped, with its reason
  const std::string bytes = read_bytes(dir / "recovery.safetensors");
  write_bytes(dir / "epoch_0009.safetensors", bytes.substr(0, bytes.size() / 2));
  write_bytes(dir / "notes.txt", "not a checkpoint");
  std::vector<std::string> skipped;
  CHECK(train::find_latest_checkpoint(dir.string(), &skipped) == (dir / "recovery.safetensors").string());
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].find("epoch_0009") != std::string::npos);
}

TEST_CASE("checkpoint: export writes the model or EMA weights alone") {
  TempDir tmp;
  auto model = tiny(), ema = tiny(16, 3);
  const fs::path ck = tmp.path / "c.safetensors";
  train::save_checkpoint(ck.string(), *model, ema.get(), adamw(*model).get(), some_meta());
  for (bool use_ema : {false, true}) {
    const fs::path out = tmp.path / (use_ema ? "ema.safetensors" : "model.safetensors");
    train::export_weights(ck.string(), out.string(), use_ema);
    auto fresh = tiny(16, 9);
    nn::StateDict w;
    for (const auto& [name, t] : load_safetensors(out.string())) w.insert(name, t);
    fresh->load_state_dict(w);  // strict: exactly the model's names
    expect_same_state(fresh->state_dict(), (use_ema ? ema : model)->state_dict());
  }
  train::save_checkpoint(ck.string(), *model, nullptr, nullptr, some_meta());
  CHECK_THROWS_WITH_AS(train::export_weights(ck.string(), (tmp.path / "x.safetensors").string(), true),
                       doctest::Contains("no EMA weights"), std::runtime_error);
}
