// test_param_groups.cpp: the trainer's parameter groups (train/param_groups.h): which tensors
// get weight decay, layer ids of ViT and Swin names, and layer-wise LR decay multipliers.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

#include "models/registry.h"
#include "train/param_groups.h"

using namespace rv;

namespace {

std::shared_ptr<models::Model> tiny_vit(const std::string& pos = "rope_mixed") {
  return models::create_model("vit_tiny_patch16_rope_mixed_224", {{"img_size", "16"}, {"patch_size", "4"},
                                                                   {"embed_dim", "16"}, {"depth", "3"},
                                                                   {"num_heads", "2"}, {"num_classes", "5"},
                                                                   {"pos_embed", pos}});
}

// name -> (group index) for every parameter in the groups.
std::map<std::string, size_t> where(const train::TrainParamGroups& g) {
  std::map<std::string, size_t> out;
  for (size_t i = 0; i < g.groups.size(); ++i)
    for (const auto& n : g.groups[i].names) out[n] = i;
  return out;
}

}  // namespace

TEST_CASE("param groups: no weight decay on 1-D tensors, biases and the model's no_weight_decay list") {
  for (const std::string pos : {"rope_mixed", "ape"}) {
    auto model = tiny_vit(pos);
    const train::TrainParamGroups g = train::make_param_groups(*model, 0.05, 1.0);
    REQUIRE(g.groups.size() == 2);
    const auto at = where(g);
    CHECK(at.size() == model->named_parameters().size());  // every parameter once
    for (const auto& [name, p] : model->named_parameters()) {
      const bool expect_decay = p.dim() > 1 && !name.ends_with(".bias") && name != "cls_token" &&
                                name != "pos_embed" && name != "rope.freqs";
      const auto& grp = g.groups[at.at(name)];
      CAPTURE(name);
      CHECK(*grp.weight_decay == (expect_decay ? 0.05 : 0.0));
    }
    CHECK(g.lr_scale == std::vector<double>{1.0, 1.0});
    if (pos == "ape") CHECK(at.count("pos_embed") == 1);
    else CHECK(at.count("rope.freqs") == 1);
  }
}

TEST_CASE("param groups: ViT layer ids and layer-wise LR decay") {
  auto model = tiny_vit();  // depth 3: ids 0 (embeddings), 1..3 (blocks), 4 (norm, head)
  const auto& cfg = model->config();
  CHECK(train::layer_id("cls_token", cfg) == 0);
  CHECK(train::layer_id("patch_embed.proj.weight", cfg) == 0);
  CHECK(train::layer_id("rope.freqs", cfg) == 0);
  CHECK(train::layer_id("blocks.0.attn.qkv.weight", cfg) == 1);
  CHECK(train::layer_id("blocks.2.mlp.fc2.bias", cfg) == 3);
  CHECK(train::layer_id("norm.weight", cfg) == 4);
  CHECK(train::layer_id("head.weight", cfg) == 4);
  CHECK_THROWS_WITH_AS(train::layer_id("blocks.7.attn.qkv.weight", cfg), doctest::Contains("blocks.7"),
                       std::invalid_argument);

  const train::TrainParamGroups g = train::make_param_groups(*model, 0.05, 0.5);
  const auto at = where(g);
  auto scale = [&](const std::string& n) { return g.lr_scale[at.at(n)]; };
  CHECK(scale("head.weight") == 1.0);
  CHECK(scale("blocks.2.attn.qkv.weight") == 0.5);
  CHECK(scale("blocks.0.attn.qkv.weight") == 0.125);
  CHECK(scale("patch_embed.proj.weight") == 0.0625);  // 0.5^4
  CHECK(scale("cls_token") == 0.0625);
  // decay and no-decay stay apart inside a layer
  CHECK(at.at("blocks.1.attn.qkv.weight") != at.at("blocks.1.attn.qkv.bias"));
  CHECK(*g.groups[at.at("blocks.1.attn.qkv.bias")].weight_decay == 0.0);
  CHECK(g.groups.size() == g.lr_scale.size());
  for (size_t i = 0; i < g.groups.size(); ++i)
    CHECK(g.lr_scale[i] == std::pow(0.5, double(4 - g.layer_id[i])));
  CHECK_THROWS_WITH_AS(train::make_param_groups(*model, 0.05, 0.0), doctest::Contains("layer_decay"),
                       std::invalid_argument);
}

TEST_CASE("param groups: Swin layer ids count blocks across stages") {
  models::ModelConfig cfg;
  cfg.arch = "swin";
  cfg.name = "swin_test";
  cfg.depths = {2, 2, 6, 2};  // 12 blocks: ids 0, 1..12, 13
  CHECK(train::layer_id("patch_embed.proj.weight", cfg) == 0);
  CHECK(train::layer_id("layers.0.blocks.0.attn.qkv.weight", cfg) == 1);
  CHECK(train::layer_id("layers.1.downsample.reduction.weight", cfg) == 2);  // with the last block of stage 0
  CHECK(train::layer_id("layers.1.blocks.1.norm1.weight", cfg) == 4);
  CHECK(train::layer_id("layers.2.blocks.5.mlp.fc1.weight", cfg) == 10);
  CHECK(train::layer_id("layers.3.blocks.1.attn.proj.bias", cfg) == 12);
  CHECK(train::layer_id("head.fc.weight", cfg) == 13);
  CHECK_THROWS_WITH_AS(train::layer_id("layers.4.blocks.0.x", cfg), doctest::Contains("stage"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(train::layer_id("layers.0.blocks.2.x", cfg), doctest::Contains("stage 0"),
                       std::invalid_argument);
}

TEST_CASE("param groups: frozen parameters are left out") {
  auto model = tiny_vit();
  model->parameter("patch_embed.proj.weight").requires_grad_(false);
  const auto at = where(train::make_param_groups(*model, 0.05, 0.7));
  CHECK(at.count("patch_embed.proj.weight") == 0);
  CHECK(at.count("patch_embed.proj.bias") == 1);
}
