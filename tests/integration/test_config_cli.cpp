// test_config_cli.cpp: `ropevit config` run as a user runs it (the built program, through a
// shell): the exit codes (0 ok, 1 a bad config, 2 a bad command line), the resolved JSON, the
// --print-config table, --keys, and errors that name the file, the key and the close match.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;

using Run = rv::test::CliRun;
using rv::test::contains;
using rv::test::lines;
using rv::test::read_file;

// A scratch folder for this process, removed at exit.
const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_config_cli");
  return d;
}

// Runs `ropevit <args>` from the source folder (configs/ paths are relative to it).
Run ropevit(const std::string& args) { return rv::test::ropevit(args, {.env = "", .cwd = RV_SOURCE_DIR}); }

}  // namespace

TEST_CASE("ropevit config prints the resolved JSON, which resolves to itself") {
  Run r = ropevit("config configs/fmnist_vit_rope_mixed.json optim.lr=2e-3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["optim"]["lr"] == 2e-3);
  CHECK(j["model"]["name"] == "vit_tiny_patch16_rope_mixed_224");
  CHECK(j["data"]["num_classes"] == 10);
  CHECK(j["train"]["run_name"] == "fmnist_vit_rope_mixed");

  const fs::path saved = tmp().path / "resolved.json";
  Run w = ropevit("config configs/fmnist_vit_rope_mixed.json optim.lr=2e-3 --print-config --out '" + saved.string() + "'");
  REQUIRE(w.code == 0);
  CHECK(nlohmann::json::parse(read_file(saved)) == j);
  Run again = ropevit("config '" + saved.string() + "'");
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out) == j);
}

TEST_CASE("ropevit config --print-config says where each value came from") {
  Run r = ropevit("config configs/fmnist_vit_ape.json train.epochs=5 --print-config");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "# config: configs/fmnist_vit_ape.json\n# includes: configs/fmnist_base.json\n"));
  auto line = [&](const std::string& key) {
    const size_t at = r.out.find("\n" + key + " ");
    return at == std::string::npos ? std::string() : r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
  };
  CHECK(contains(line("model.pos_embed"), "\"ape\""));
  CHECK(contains(line("model.pos_embed"), "configs/fmnist_vit_ape.json"));
  CHECK(contains(line("model.embed_dim"), "configs/fmnist_base.json"));
  CHECK(contains(line("train.epochs"), "command line"));
  CHECK(contains(line("optim.momentum"), "default"));
}

TEST_CASE("ropevit config: a bad config exits 1 naming the file, the key and the close match") {
  const fs::path f = tmp().path / "typo.json";
  std::ofstream(f) << R"({"include": ")" << RV_SOURCE_DIR << R"(/configs/fmnist_base.json", "optim": {"lr_min": 1e-5}})";
  Run r = ropevit("config '" + f.string() + "' optim.name=adam");
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "ropevit config: error: 2 problems in the config:"));
  CHECK(contains(r.err, f.string() + ": optim.lr_min: unknown key (did you mean sched.min_lr?)"));
  CHECK(contains(r.err, "command line: optim.name: \"adam\" is not one of adamw, lamb, sgd (did you mean adamw?)"));
}

TEST_CASE("ropevit config: command-line mistakes exit 2; --help and --keys exit 0") {
  Run bad = ropevit("config configs/fmnist_base.json --prnt-config");
  CHECK(bad.code == 2);
  CHECK(contains(bad.err, "unknown option '--prnt-config' (did you mean --print-config?)"));
  Run none = ropevit("config");
  CHECK(none.code == 2);
  CHECK(contains(none.err, "missing CONFIG.json"));

  Run help = ropevit("config --help");
  CHECK(help.code == 0);
  for (const char* opt : {"--print-config", "--keys", "--model", "--out FILE", "KEY=VALUE", "CONFIG.json"})
    CHECK_MESSAGE(contains(help.out, opt), opt);
  Run keys = ropevit("config --keys");
  CHECK(keys.code == 0);
  CHECK(contains(keys.out, "optim.name  one of adamw, lamb, sgd; default \"adamw\""));
  Run top = ropevit("--help");
  CHECK(top.code == 0);
  CHECK(contains(top.out, "config"));
}
