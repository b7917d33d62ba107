// test_convert_cli.cpp: `ropevit convert` run as a user runs it (the built program, through a
// shell): an NV-named safetensors checkpoint converted for a model (the notes printed, the file's
// metadata, the file loading strictly and giving timm's logits, at the training size and resized
// to another), the errors (a checkpoint for another model: every problem listed, no file left
// behind; a bad command line: exit 2), --drop-head for a new num_classes, and the Python step for
// a real .pth file, which is skipped when python3 with torch is not installed.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/nn/init.h"
#include "models/pretrained.h"
#include "models/registry.h"
#include "tests/support/check.h"
#include "tests/support/cli_run.h"

using namespace rv;

namespace {

namespace fs = std::filesystem;
const std::string kDir = RV_FIXTURE_DIR;

using Run = rv::test::CliRun;
using rv::test::contains;
using rv::test::lines;
using rv::test::read_file;

// A scratch folder for this process, removed at exit.
const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_convert_cli");
  return d;
}

Run ropevit(const std::string& args) { return rv::test::ropevit(args); }

// The reduced ViT of model_vit.safetensors as overrides of a registered name.
const std::string kVitArgs =
    "--model vit_small_patch16_rope_mixed_ape_224 embed_dim=128 depth=2 heads=2 mlp_ratio=1 num_classes=10";

std::shared_ptr<models::Model> build(const std::string& name, const std::map<std::string, std::string>& overrides) {
  nn::init::SkipInitGuard skip;
  return models::create_model(name, overrides);
}

}  // namespace

TEST_CASE("ropevit convert: an NV safetensors checkpoint -> timm names, loading strictly, timm's logits") {
  SafetensorsFile timm = SafetensorsFile::open(kDir + "/model_vit.safetensors");
  const std::string in = kDir + "/convert_nv_rope_mixed_ape_deit.safetensors";
  for (const auto& [size, hw, resized] : {std::tuple{"64x64", "64", false}, {"96x96", "96", true}}) {
    CAPTURE(size);
    const fs::path out = tmp().path / (std::string("vit_") + size + ".safetensors");
    Run r = ropevit("convert '" + in + "' '" + out.string() + "' " + kVitArgs + " --img-size " + hw + " " + hw);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(contains(r.out, "dropped 2 regenerated buffers: freqs_t_x, freqs_t_y"));
    CHECK(contains(r.out, "reshaped freqs [2, 2, 64] -> rope.freqs [2, 2, 2, 32]"));
    CHECK(contains(r.out, "resized pos_embed 4x4 -> 6x6 (bicubic, antialias on)") == resized);
    CHECK(contains(r.out, "wrote " + out.string() + ": 37 tensors for vit_small_patch16_rope_mixed_ape_224 at " +
                              size));

    SafetensorsFile file = SafetensorsFile::open(out.string());
    CHECK(file.metadata().at("model") == "vit_small_patch16_rope_mixed_ape_224");
    CHECK(file.metadata().at("img_size") == size);
    CHECK(file.metadata().at("source") == "convert_nv_rope_mixed_ape_deit.safetensors");
    CHECK(contains(file.metadata().at("notes"), "freqs_t_x"));
    CHECK(contains(file.metadata().at("overrides"), "embed_dim=128"));
    CHECK(!file.contains("freqs"));
    CHECK(file.contains("rope.freqs"));

    // The file is in the model's names and shapes: a strict load_state_dict takes it as it is.
    auto model = build("vit_small_patch16_rope_mixed_ape_224", {{"embed_dim", "128"}, {"depth", "2"}, {"heads", "2"},
                                                                {"mlp_ratio", "1"}, {"num_classes", "10"},
                                                                {"img_size", hw}});
    const nn::StateDict loaded = models::read_checkpoint(out.string());
    model->load_state_dict(loaded);
    CHECK(models::convert_state_dict(loaded, *model).notes.empty());  // converting again changes nothing
    model->eval();
    RV_EXPECT_CLOSE(model->forward(timm.tensor(std::string("input.") + size)),
                    timm.tensor(std::string("rope_mixed_ape.") + size + ".logits"), 0, 1e-4);
  }
}

TEST_CASE("ropevit convert: errors list every problem, leave no file, and bad command lines exit 2") {
  const std::string in = kDir + "/convert_nv_rope_mixed_ape_deit.safetensors";
  const fs::path out = tmp().path / "wrong.safetensors";
  // The checkpoint of a RoPE-Mixed+APE model read for the RoPE-Axial model of another width.
  Run r = ropevit("convert '" + in + "' '" + out.string() +
                  "' --model vit_small_patch16_rope_224 embed_dim=64 depth=2 heads=2 mlp_ratio=1 num_classes=10");
  CHECK(r.code == 1);
  CHECK(contains(r.err, "ropevit convert: error: convert checkpoint -> model 'vit_small_patch16_rope_224'"));
  CHECK(contains(r.err, "unexpected keys (2): freqs, pos_embed"));
  CHECK(contains(r.err, "cls_token: checkpoint [1, 1, 128], model [1, 1, 64]"));
  CHECK(contains(r.err, "blocks.1.mlp.fc2.weight: checkpoint [128, 128], model [64, 64]"));
  CHECK(!fs::exists(out));

  CHECK(ropevit("convert '" + in + "' '" + out.string() + "'").code == 2);  // no --model
  Run bad_size = ropevit("convert '" + in + "' '" + out.string() + "' " + kVitArgs + " --img-size 64");
  CHECK(bad_size.code == 2);
  CHECK(contains(bad_size.err, "--img-size"));
  Run bad_ext = ropevit("convert '" + in + "' out.bin " + kVitArgs);
  CHECK(bad_ext.code == 2);
  CHECK(contains(bad_ext.err, "OUT must end in .safetensors"));
  Run unknown = ropevit("convert '" + in + "' '" + out.string() + "' --model vit_smal_patch16_rope_224");
  CHECK(unknown.code != 0);
  CHECK(contains(unknown.err, "vit_small_patch16_rope_224"));  // the close names are listed
  Run missing = ropevit("convert no_such.safetensors '" + out.string() + "' " + kVitArgs);
  CHECK(missing.code == 1);
  CHECK(contains(missing.err, "no such file: 'no_such.safetensors'"));
  CHECK(!fs::exists(out));
}

TEST_CASE("ropevit convert --drop-head: a new num_classes leaves the head out, and the file loads with skip") {
  const std::string in = kDir + "/convert_nv_rope_mixed_ape_deit.safetensors";
  const fs::path out = tmp().path / "seven.safetensors";
  const std::string args = "--model vit_small_patch16_rope_mixed_ape_224 embed_dim=128 depth=2 heads=2 mlp_ratio=1 "
                           "num_classes=7";
  Run strict = ropevit("convert '" + in + "' '" + out.string() + "' " + args);
  CHECK(strict.code == 1);
  CHECK(contains(strict.err, "head.weight: checkpoint [10, 128], model [7, 128]"));
  Run r = ropevit("convert '" + in + "' '" + out.string() + "' " + args + " --drop-head");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "skipped 2 head tensor(s), the model keeps its own: head.weight (checkpoint [10, 128], "
                        "model [7, 128])"));
  CHECK(contains(r.out, ": 35 tensors for"));
  auto model = build("vit_small_patch16_rope_mixed_ape_224", {{"embed_dim", "128"}, {"depth", "2"}, {"heads", "2"},
                                                              {"mlp_ratio", "1"}, {"num_classes", "7"}});
  CHECK_THROWS_WITH_AS(models::load_pretrained(*model, out.string()),
                       doctest::Contains("missing keys (2): head.weight, head.bias"), std::runtime_error);
  const auto notes = models::load_pretrained(*model, out.string(), {.skip_mismatched_head = true});
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "head.weight (not in the checkpoint)"));
}

TEST_CASE("ropevit convert: a .pth checkpoint through tools/convert_checkpoint.py (skipped without torch)") {
  const std::string pth = kDir + "/convert_nv_tiny.pth";
  const fs::path out = tmp().path / "tiny.safetensors";
  const std::string args = "--model vit_tiny_patch16_rope_mixed_224 in_chans=1 embed_dim=64 heads=2 depth=1 "
                           "mlp_ratio=1 num_classes=3 img_size=32";

  // Without a usable Python the error names the commands to run by hand.
  Run no_python = ropevit("convert '" + pth + "' '" + out.string() + "' " + args + " --python /no/such/python3");
  CHECK(no_python.code == 1);
  CHECK(contains(no_python.err, "needs /no/such/python3 with torch and safetensors"));
  CHECK(contains(no_python.err, "tools/convert_checkpoint.py '" + pth + "' raw.safetensors"));
  CHECK(!fs::exists(out));

  if (std::system("python3 -c 'import torch, safetensors' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: python3 with torch and safetensors is not installed");
    return;
  }
  Run r = ropevit("convert '" + pth + "' '" + out.string() + "' " + args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.err, "(from 'model')"));  // convert_checkpoint.py unwrapped {'model': ..., 'epoch': 3}
  CHECK(contains(r.out, "reshaped freqs [2, 1, 32] -> rope.freqs [2, 1, 2, 16]"));
  CHECK(SafetensorsFile::open(out.string()).metadata().at("source") == "convert_nv_tiny.pth");
  for (const auto& entry : fs::directory_iterator(tmp().path))  // the temporary raw file is gone
    CHECK(!contains(entry.path().filename().string(), ".raw."));

  auto model = build("vit_tiny_patch16_rope_mixed_224", {{"in_chans", "1"}, {"embed_dim", "64"}, {"heads", "2"},
                                                         {"depth", "1"}, {"mlp_ratio", "1"}, {"num_classes", "3"},
                                                         {"img_size", "32"}});
  models::load_pretrained(*model, out.string());
  model->eval();
  SafetensorsFile expected = SafetensorsFile::open(kDir + "/convert_expected.safetensors");
  RV_EXPECT_CLOSE(model->forward(expected.tensor("pth.input")), expected.tensor("pth.logits"), 0, 1e-4);
}
