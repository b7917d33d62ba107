// model_config.h: ModelConfig, every number that defines one model, and key=value overrides.
//
// A registered name (`vit_small_patch16_rope_mixed_224`, models/registry.h) is a ModelConfig;
// any field can then be overridden from the command line or a config file, as timm's
// create_model(name, img_size=320, drop_path_rate=0.1) does:
//
//   ModelConfig cfg = model_config("vit_small_patch16_rope_mixed_224");
//   apply_override(cfg, "img_size", "384x640");   // or "320": square
//   apply_override(cfg, "drop_path_rate", "0.1");
//
// The same struct serves ViT and Swin (`arch`); fields one family does not use keep their
// defaults and are rejected as overrides for it, so a typo or a wrong field fails loudly.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rv::models {

struct ModelConfig {
  std::string name;  // the registry name this config came from ("" when built by hand)
  std::string arch;  // "vit" or "swin"
  // Position embedding:
  //   ViT:  "ape", "rope_axial", "rope_mixed", "rope_axial_ape", "rope_mixed_ape"
  //   Swin: "rpb", "rope_axial", "rope_mixed"
  std::string pos_embed = "ape";
  // ViT only: the APE table also covers the CLS token (the original ViT, timm's
  // no_embed_class=False); false is DeiT-III / RoPE-ViT: APE on patch tokens only.
  bool ape_on_cls = false;
  // APE resampled to another grid: true is timm's resample_abs_pos_embed (PyTorch's antialiased
  // bicubic, whose A = -0.5 kernel differs from plain bicubic when growing too, not only when
  // shrinking); false reproduces the official RoPE-ViT code (plain bicubic, A = -0.75).
  bool ape_antialias = true;
  // ViT only, timm's names: a CLS token (class_token) and what the head reads (global_pool):
  //   "token"  the CLS token after the final norm (every registered ViT; the paper's models)
  //   "avg"    the mean of the patch tokens, then fc_norm (timm: norm is Identity, fc_norm
  //            takes its place after pooling); class_token may then be false (no CLS at all)
  bool class_token = true;
  std::string global_pool = "token";

  int64_t img_h = 224, img_w = 224;  // input size; must be divisible by the patch (ViT)
  int64_t in_chans = 3;
  int64_t num_classes = 1000;  // 0 = no head (features only)
  int64_t patch_size = 16;     // ViT 16, Swin 4
  int64_t embed_dim = 384;     // ViT: C; Swin: C of stage 0 (doubles per stage)
  std::vector<int64_t> depths = {12};    // ViT: one entry; Swin: blocks per stage
  std::vector<int64_t> num_heads = {6};  // ViT: one entry; Swin: heads per stage
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double layer_scale_init = 1e-4;  // LayerScale init (gamma_1, gamma_2); 0 = no LayerScale
  double norm_eps = 1e-6;          // LayerNorm eps: 1e-6 ViT, 1e-5 Swin
  double drop_rate = 0.0;          // dropout before the head (timm's drop_rate)
  double attn_drop_rate = 0.0;
  double proj_drop_rate = 0.0;
  double drop_path_rate = 0.0;     // stochastic depth, linear over blocks
  double rope_theta = 100.0;       // RoPE-Axial base (100 ViT, 50 Swin)
  double rope_mixed_theta = 10.0;  // RoPE-Mixed init base
  int64_t window_size = 0;         // Swin: 0 = img_size // 32 (spec section 5)
  uint64_t seed = 0;               // weight init

  int64_t depth() const;  // ViT: depths[0]; Swin: the sum over stages
  bool uses_rope() const { return pos_embed.rfind("rope", 0) == 0; }
  bool uses_rope_mixed() const { return pos_embed.rfind("rope_mixed", 0) == 0; }
  bool uses_ape() const { return pos_embed == "ape" || pos_embed.ends_with("_ape"); }
  bool uses_rpb() const { return pos_embed == "rpb"; }
  bool avg_pool() const { return global_pool == "avg"; }
};

// Sets one field from text. Keys are the field names above, plus `img_size` ("224" or
// "384x640", height x width) and `depth` / `heads` (comma lists for Swin: "2,2,6,2").
// Throws std::invalid_argument naming the key and what was expected for an unknown key, a
// value that does not parse, or a field the model's arch does not use.
void apply_override(ModelConfig& cfg, const std::string& key, const std::string& value);
void apply_overrides(ModelConfig& cfg, const std::map<std::string, std::string>& overrides);

// Checks the config as a whole (sizes positive, heads divide dims, img divisible by the
// patch, a known pos_embed for the arch, ...); throws naming the model and the field.
void validate(const ModelConfig& cfg);

// One line per field, for `ropevit info` and run folders.
std::string to_string(const ModelConfig& cfg);

}  // namespace rv::models
