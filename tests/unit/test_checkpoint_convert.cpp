// checkpoint_convert: the renaming, dropping, resizing and checking rules of
// models/checkpoint_convert.h on small models built here (the numbers against timm and torch are
// in tests/fixtures/test_checkpoint_convert.cpp), and load_pretrained from a file.
//   - timm names pass through untouched for every registered model (same tensors, no notes)
//   - 'module.' stripped; regenerated buffers dropped; NV freqs reshaped; LayerScale both ways;
//     MS Swin downsample / head layout
//   - missing, unexpected and mis-shaped keys all listed in ONE error
//   - skip_mismatched_head: a new num_classes, or no head
//   - load_pretrained: from a safetensors file, at another resolution (a non-square source grid
//     from the file's metadata), and a .pth refused
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "models/ape.h"
#include "models/checkpoint_convert.h"
#include "models/pretrained.h"
#include "models/registry.h"
#include "models/swin_rel_pos_bias.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models;

namespace {

namespace fs = std::filesystem;

// A small model of a registered family (weights from `seed`).
std::shared_ptr<Model> small(const std::string& name, std::map<std::string, std::string> overrides = {},
                             uint64_t seed = 1) {
  std::map<std::string, std::string> o;
  if (model_config(name).arch == "vit")
    o = {{"embed_dim", "64"}, {"heads", "2"}, {"depth", "2"}, {"img_size", "64"}, {"num_classes", "5"}};
  else
    o = {{"embed_dim", "16"}, {"heads", "1,2"}, {"depth", "2,2"}, {"img_size", "64"}, {"num_classes", "5"},
         {"window_size", "4"}};
  o["seed"] = std::to_string(seed);
  for (const auto& [k, v] : overrides) o[k] = v;
  return create_model(name, o);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string all_notes(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += n + "\n";
  return s;
}

std::string convert_error(const nn::StateDict& sd, const Model& model, const ConvertOptions& options = {}) {
  try {
    convert_state_dict(sd, model, options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && (a.numel() == 0 || rv::max(rv::abs(sub(a, b))).item() == 0.0);
}

}  // namespace

TEST_CASE("timm names pass through unchanged for every registered model") {
  for (const std::string& name : model_names()) {
    CAPTURE(name);
    std::shared_ptr<Model> model;
    {
      nn::init::SkipInitGuard skip;  // names and shapes only: ViT-L and Swin-B are built in no time
      model = create_model(name);
    }
    const nn::StateDict sd = model->state_dict();
    ConvertResult r = convert_state_dict(sd, *model);
    CHECK(r.notes.empty());
    REQUIRE(r.state.size() == sd.size());
    for (size_t i = 0; i < sd.size(); ++i) {
      CHECK(r.state.items()[i].first == sd.items()[i].first);
      // The very same tensors: nothing copied, resized or cast.
      CHECK(r.state.items()[i].second.impl_ptr() == sd.items()[i].second.impl_ptr());
    }
  }
}

TEST_CASE("NV ViT names: module. prefix, freqs reshaped, freqs_t_* dropped, gamma_1 kept for RoPE") {
  auto model = small("vit_small_patch16_rope_mixed_224");
  const nn::StateDict own = model->state_dict();
  nn::StateDict nv;
  const Tensor& f = own.at("rope.freqs");  // (2, L, NH, HD/2) = (2, 2, 2, 16)
  REQUIRE(f.shape() == Shape{2, 2, 2, 16});
  for (const auto& [k, v] : own)
    if (k == "rope.freqs") {
      nv.insert("module.freqs", v.reshape({2, 2, 32}));
      nv.insert("module.freqs_t_x", zeros({16}));
      nv.insert("module.freqs_t_y", zeros({16}));
    } else {
      nv.insert("module." + k, v);
    }
  ConvertResult r = convert_state_dict(nv, *model);
  const std::string notes = all_notes(r.notes);
  CHECK(contains(notes, "stripped the 'module.' prefix from"));
  CHECK(contains(notes, "dropped 2 regenerated buffers: freqs_t_x, freqs_t_y"));
  CHECK(contains(notes, "reshaped freqs [2, 2, 32] -> rope.freqs [2, 2, 2, 16]"));
  CHECK(!contains(notes, "LayerScale"));
  REQUIRE(r.state.keys() == own.keys());
  for (const auto& [k, v] : own) CHECK(same_values(r.state.at(k), v));
  // The reshape keeps heads outermost: freqs[x|y, l, h*16 + j] = rope.freqs[x|y, l, h, j].
  CHECK(r.state.at("rope.freqs").reshape({2, 2, 32}).contiguous().data<float>()[16 + 3] ==
        f.contiguous().data<float>()[16 + 3]);
}

TEST_CASE("LayerScale names move toward the model: gamma_1 -> ls1.gamma (deit3) and back (RoPE)") {
  auto deit = small("deit3_small_patch16_224");
  auto rope = small("vit_small_patch16_rope_224");
  nn::StateDict nv_deit, timm_rope;
  for (const auto& [k, v] : deit->state_dict()) {
    std::string n = k;
    if (n.find(".ls1.gamma") != std::string::npos) n.replace(n.find(".ls1.gamma"), 10, ".gamma_1");
    if (n.find(".ls2.gamma") != std::string::npos) n.replace(n.find(".ls2.gamma"), 10, ".gamma_2");
    nv_deit.insert(n, v);
  }
  CHECK(nv_deit.contains("blocks.1.gamma_2"));
  ConvertResult r = convert_state_dict(nv_deit, *deit);
  CHECK(contains(all_notes(r.notes), "renamed 4 LayerScale keys (blocks.i.gamma_1/2 -> blocks.i.ls1/ls2.gamma)"));
  CHECK(r.state.keys() == deit->state_dict().keys());
  CHECK(same_values(r.state.at("blocks.1.ls2.gamma"), nv_deit.at("blocks.1.gamma_2")));

  for (const auto& [k, v] : rope->state_dict()) {
    std::string n = k;
    if (n.find(".gamma_1") != std::string::npos) n.replace(n.find(".gamma_1"), 8, ".ls1.gamma");
    timm_rope.insert(n, v);
  }
  ConvertResult back = convert_state_dict(timm_rope, *rope);
  CHECK(contains(all_notes(back.notes), "renamed 2 LayerScale keys (blocks.i.ls1/ls2.gamma -> blocks.i.gamma_1/2)"));
  CHECK(back.state.keys() == rope->state_dict().keys());
}

TEST_CASE("MS / NV Swin layout: downsample moved one stage on, head -> head.fc, buffers dropped") {
  auto model = small("swin_tiny_patch4_window7_rope_mixed_224");
  const nn::StateDict own = model->state_dict();
  nn::StateDict ms;
  for (const auto& [k, v] : own) {
    std::string n = k;
    if (n.rfind("layers.1.downsample.", 0) == 0) n = "layers.0.downsample." + n.substr(20);
    if (n.rfind("head.fc.", 0) == 0) n = "head." + n.substr(8);
    ms.insert(n, v);
    if (n.ends_with("attn.rope_freqs")) {
      ms.insert(n.substr(0, n.size() - 10) + "rope_t_x", zeros({16}));
      ms.insert(n.substr(0, n.size() - 10) + "rope_t_y", zeros({16}));
    }
  }
  ms.insert("layers.0.blocks.1.attn_mask", zeros({4, 16, 16}));
  ms.insert("layers.0.blocks.0.attn.relative_position_index", zeros({16, 16}, DType::i64));
  ConvertResult r = convert_state_dict(ms, *model);
  const std::string notes = all_notes(r.notes);
  CHECK(contains(notes, "moved 3 patch-merging keys from the MS layout"));
  CHECK(contains(notes, "renamed head.* -> head.fc.* (2 keys)"));
  CHECK(contains(notes, "dropped 10 regenerated buffers: attn_mask, relative_position_index, rope_t_x, rope_t_y"));
  REQUIRE(r.state.keys() == own.keys());
  for (const auto& [k, v] : own) CHECK(same_values(r.state.at(k), v));
}

TEST_CASE("every problem is listed in one error: missing, unexpected, shape mismatches with both shapes") {
  auto model = small("vit_small_patch16_rope_mixed_ape_224");
  nn::StateDict sd;
  for (const auto& [k, v] : model->state_dict()) {
    if (k == "norm.weight" || k == "blocks.1.mlp.fc2.bias") continue;  // missing
    if (k == "blocks.0.attn.qkv.weight") sd.insert(k, zeros({3 * 64, 32}));  // mismatch
    else if (k == "head.weight") sd.insert(k, zeros({1000, 64}));           // mismatch (head)
    else sd.insert(k, v);
  }
  sd.insert("fc_norm.weight", zeros({64}));  // unexpected
  sd.insert("dist_token", zeros({1, 1, 64}));
  const std::string err = convert_error(sd, *model);
  CAPTURE(err);
  CHECK(contains(err, "model 'vit_small_patch16_rope_mixed_ape_224'"));
  CHECK(contains(err, "6 problem(s)"));
  CHECK(contains(err, "missing keys (2): blocks.1.mlp.fc2.bias, norm.weight"));
  CHECK(contains(err, "unexpected keys (2): fc_norm.weight, dist_token"));
  CHECK(contains(err, "blocks.0.attn.qkv.weight: checkpoint [192, 32], model [192, 64]"));
  CHECK(contains(err, "head.weight: checkpoint [1000, 64], model [5, 64]"));

  // A pos_embed that is no square grid cannot be resized: reported with both shapes.
  nn::StateDict odd = model->state_dict();
  odd.set("pos_embed", zeros({1, 15, 64}));
  CHECK(contains(convert_error(odd, *model), "pos_embed: checkpoint [1, 15, 64], model [1, 16, 64]"));
  // Two names that map to one key.
  nn::StateDict twice = model->state_dict();
  twice.insert("module.norm.bias", zeros({64}));
  CHECK(contains(convert_error(twice, *model), "two checkpoint keys map to 'norm.bias'"));
}

TEST_CASE("skip_mismatched_head: a new num_classes keeps the model's head; no head drops the checkpoint's") {
  auto src = small("vit_small_patch16_rope_224", {{"num_classes", "1000"}});
  auto ten = small("vit_small_patch16_rope_224", {{"num_classes", "10"}});
  auto none = small("vit_small_patch16_rope_224", {{"num_classes", "0"}});
  const nn::StateDict sd = src->state_dict();
  CHECK(contains(convert_error(sd, *ten), "head.weight: checkpoint [1000, 64], model [10, 64]"));
  CHECK(contains(convert_error(sd, *none), "unexpected keys (2): head.weight, head.bias"));
  ConvertResult r = convert_state_dict(sd, *ten, ConvertOptions{.skip_mismatched_head = true, .source_grid = {}});
  CHECK(r.skipped_head.size() == 2);
  CHECK(!r.state.contains("head.weight"));
  CHECK(contains(all_notes(r.notes), "skipped 2 head tensor(s), the model keeps its own: head.weight (checkpoint "
                                     "[1000, 64], model [10, 64])"));
  ConvertResult r0 = convert_state_dict(sd, *none, ConvertOptions{.skip_mismatched_head = true, .source_grid = {}});
  CHECK(r0.state.size() == sd.size() - 2);
  CHECK(contains(all_notes(r0.notes), "head.bias (the model has no such key)"));
  // Anything else still fails.
  nn::StateDict bad = sd;
  bad.erase("norm.bias");
  CHECK(contains(convert_error(bad, *ten, ConvertOptions{.skip_mismatched_head = true, .source_grid = {}}), "missing keys (1): norm.bias"));
}

TEST_CASE("pos_embed and RPB tables follow the model's resolution; other dtypes become the model's") {
  // ViT: a 4x4-grid table into the same model built for 96x80 (6x5 grid), antialias from the config.
  auto vit64 = small("deit3_small_patch16_224");
  auto vit96 = small("deit3_small_patch16_224", {{"img_size", "96x80"}, {"ape_antialias", "false"}});
  ConvertResult r = convert_state_dict(vit64->state_dict(), *vit96);
  CHECK(contains(all_notes(r.notes), "resized pos_embed 4x4 -> 6x5 (bicubic, antialias off)"));
  RV_EXPECT_CLOSE(r.state.at("pos_embed"),
                  resample_abs_pos_embed(vit64->state_dict().at("pos_embed"), {4, 4}, {6, 5}, 0, false), 0, 0);
  // The original ViT keeps its CLS row.
  auto orig64 = small("vit_small_patch16_224");
  auto orig32 = small("vit_small_patch16_224", {{"img_size", "32"}});
  ConvertResult c = convert_state_dict(orig64->state_dict(), *orig32);
  CHECK(contains(all_notes(c.notes), "resized pos_embed 4x4 -> 2x2 (bicubic, antialias on, CLS row kept)"));
  RV_EXPECT_CLOSE(c.state.at("pos_embed").slice(1, 0, 1), orig64->state_dict().at("pos_embed").slice(1, 0, 1), 0, 0);

  // Swin RPB at window 4 -> window 6 (stage 0 of a 64x64 input: 16x16 map; stage 1: 8x8 map).
  auto swin4 = small("swin_tiny_patch4_window7_224");
  auto swin6 = small("swin_tiny_patch4_window7_224", {{"window_size", "6"}});
  ConvertResult s = convert_state_dict(swin4->state_dict(), *swin6);
  CHECK(contains(all_notes(s.notes), "resized 4 relative_position_bias_tables for windows 4x4 -> 6x6"));
  const std::string key = "layers.1.blocks.1.attn.relative_position_bias_table";
  RV_EXPECT_CLOSE(s.state.at(key), resize_rel_pos_bias_table(swin4->state_dict().at(key), 4, 6), 0, 0);
  CHECK(s.state.at(key).shape() == Shape{121, 2});

  // A bf16 checkpoint is widened to the model's f32 (after which the check passes).
  nn::StateDict half;
  for (const auto& [k, v] : vit64->state_dict()) half.insert(k, v.to(DType::bf16));
  ConvertResult h = convert_state_dict(half, *vit64);
  CHECK(contains(all_notes(h.notes), "converted " + std::to_string(half.size()) + " tensors bfloat16 -> float32"));
  CHECK(h.state.at("norm.weight").dtype() == DType::f32);
}

TEST_CASE("load_pretrained: a file into a model at another resolution, strict, with notes") {
  const fs::path dir = fs::temp_directory_path() / ("rv_unit_convert_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "w.safetensors").string();
  auto src = small("vit_small_patch16_rope_mixed_ape_224", {}, 1);
  const nn::StateDict sd = src->state_dict();
  save_safetensors(path, NamedTensors(sd.items().begin(), sd.items().end()));

  auto same = small("vit_small_patch16_rope_mixed_ape_224", {}, 2);
  CHECK(load_pretrained(*same, path).empty());
  for (const auto& [k, v] : sd) CHECK(same_values(same->state_dict().at(k), v));

  auto big = small("vit_small_patch16_rope_mixed_ape_224", {{"img_size", "80"}, {"num_classes", "7"}}, 3);
  const Tensor own_head = big->state_dict().at("head.weight").clone();
  CHECK_THROWS_WITH_AS(load_pretrained(*big, path),
                       doctest::Contains("head.weight: checkpoint [5, 64], model [7, 64]"), std::runtime_error);
  const auto notes = load_pretrained(*big, path, PretrainedOptions{.skip_mismatched_head = true});
  CHECK(contains(all_notes(notes), "resized pos_embed 4x4 -> 5x5 (bicubic, antialias on)"));
  CHECK(contains(all_notes(notes), "skipped 2 head tensor(s)"));
  CHECK(same_values(big->state_dict().at("head.weight"), own_head));
  CHECK(same_values(big->state_dict().at("rope.freqs"), sd.at("rope.freqs")));

  CHECK_THROWS_WITH_AS(load_pretrained(*same, "model.pth"), doctest::Contains("ropevit convert 'model.pth'"),
                       std::runtime_error);

  // A file made for a non-square size (6x10 grid): its "img_size" metadata gives the grid.
  auto wide = small("deit3_small_patch16_224", {{"img_size", "96x160"}}, 4);
  const nn::StateDict wsd = wide->state_dict();
  const std::string wide_path = (dir / "wide.safetensors").string();
  save_safetensors(wide_path, NamedTensors(wsd.items().begin(), wsd.items().end()), {{"img_size", "96x160"}});
  CHECK(source_grid_from_metadata({{"img_size", "96x160"}}, 16) == Grid{6, 10});
  CHECK(source_grid_from_metadata({{"img_size", "96x161"}}, 16) == Grid{});
  CHECK(source_grid_from_metadata({{"img_size", "96"}}, 16) == Grid{});
  CHECK(source_grid_from_metadata({}, 16) == Grid{});
  auto square = small("deit3_small_patch16_224", {}, 5);
  const auto wide_notes = load_pretrained(*square, wide_path);
  CHECK(contains(all_notes(wide_notes), "resized pos_embed 6x10 -> 4x4 (bicubic, antialias on)"));
  RV_EXPECT_CLOSE(square->state_dict().at("pos_embed"),
                  resample_abs_pos_embed(wsd.at("pos_embed"), {6, 10}, {4, 4}, 0, true), 0, 0);
  // Without the metadata the 60 rows are no square grid: a shape mismatch naming both shapes.
  CHECK(contains(convert_error(wsd, *square), "pos_embed: checkpoint [1, 60, 64], model [1, 16, 64]"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}
