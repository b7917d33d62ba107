// test_swin_registry.cpp: every registered Swin builds (under SkipInitGuard, so without drawing
// weights) with exactly the state-dict keys, order and shapes and the parameter count of timm's
// model (RPB) or of the PyTorch RoPE-Swin reference (RoPE), as listed in
// tests/fixtures/data/swin_timm_keys.json by tools/make_model_fixtures.py; and the registry's
// names, configs and no-weight-decay sets.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/nn/init.h"
#include "engine/optim/optimizer.h"
#include "models/registry.h"
#include "models/swin.h"

using namespace rv;
using namespace rv::models;

namespace {

const nlohmann::json& expected_keys() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(RV_FIXTURE_DIR) + "/swin_timm_keys.json");
    REQUIRE_MESSAGE(in.good(), "cannot open swin_timm_keys.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<std::string> swin_names() {
  std::vector<std::string> out;
  for (const auto& n : model_names())
    if (model_config(n).arch == "swin") out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("the registry lists the nine Swin models, and the key file covers exactly them") {
  const auto names = swin_names();
  CHECK(names.size() == 9);
  for (const char* size : {"tiny", "small", "base"})
    for (const char* pe : {"", "rope_axial_", "rope_mixed_"}) {
      const std::string n = std::string("swin_") + size + "_patch4_window7_" + pe + "224";
      CHECK_MESSAGE(std::find(names.begin(), names.end(), n) != names.end(), n);
    }
  CHECK(expected_keys().size() == names.size());
}

TEST_CASE("every registered Swin has timm's / the reference's keys, order, shapes and parameter count") {
  for (const auto& name : swin_names()) {
    CAPTURE(name);
    REQUIRE(expected_keys().contains(name));
    const auto& want = expected_keys()[name];
    std::shared_ptr<Model> model;
    {
      nn::init::SkipInitGuard skip;
      model = create_model(name);
    }
    CHECK(model->num_parameters() == want["params"].get<int64_t>());
    const nn::StateDict sd = model->state_dict();
    const auto& keys = want["keys"];
    REQUIRE(sd.size() == keys.size());
    size_t i = 0, mismatches = 0;
    for (const auto& [k, t] : sd) {
      const std::string wk = keys[i][0].get<std::string>();
      const Shape ws = keys[i][1].get<std::vector<int64_t>>();
      if (k != wk || t.shape() != ws) {
        if (++mismatches <= 5)
          FAIL_CHECK("entry " << i << ": got " << k << " " << shape_str(t.shape()) << ", expected " << wk << " "
                              << shape_str(ws));
      }
      ++i;
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("Swin configs: window 0 follows the image (img // 32), T/S/B sizes, no_weight_decay") {
  ModelConfig c = model_config("swin_tiny_patch4_window7_224");
  CHECK(c.arch == "swin");
  CHECK(c.pos_embed == "rpb");
  CHECK(swin_window_size(c) == 7);
  apply_override(c, "img_size", "384");
  CHECK(swin_window_size(c) == 12);
  apply_override(c, "img_size", "96x160");
  CHECK(swin_window_size(c) == 3);  // min side // 32
  apply_override(c, "window_size", "5");
  CHECK(swin_window_size(c) == 5);
  c.window_size = 0;
  apply_override(c, "img_size", "16");
  CHECK_THROWS_WITH_AS(swin_window_size(c), doctest::Contains("set window_size explicitly"), std::invalid_argument);

  CHECK(model_config("swin_small_patch4_window7_rope_mixed_224").depths == std::vector<int64_t>{2, 2, 18, 2});
  CHECK(model_config("swin_base_patch4_window7_rope_axial_224").num_heads == std::vector<int64_t>{4, 8, 16, 32});
  CHECK(model_config("swin_base_patch4_window7_rope_axial_224").rope_theta == 50.0);

  // Every RPB table and every rope_freqs parameter lands in the no-decay group.
  for (const char* name : {"swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_rope_mixed_224"}) {
    CAPTURE(name);
    std::shared_ptr<Model> m;
    {
      nn::init::SkipInitGuard skip;
      m = create_model(name);
    }
    int64_t special = 0;
    for (const auto& [n, t] : m->named_parameters()) {
      const bool is_special = n.ends_with("relative_position_bias_table") || n.ends_with("rope_freqs");
      bool excluded = false;
      for (const auto& pat : m->no_weight_decay()) excluded |= optim::name_matches(n, pat);
      if (is_special) ++special;
      CHECK_MESSAGE(excluded == is_special, n);
    }
    CHECK(special == 12);  // one per block of Swin-T
  }
}
