// swin.h: the Swin Transformer (Liu et al. 2021) with RPB, RoPE-Axial or RoPE-Mixed attention
// (RoPE-Swin, Heo et al. 2024; spec/rope-vit.md sections 5, 6 and 9), in timm's module layout.
//
//   images (B, 3, H, W)
//     -> patch_embed: proj Conv 4x4/4 -> (B, H/4, W/4, C) -> norm (LN)
//     -> layers.0 .. layers.3: SwinStage (merge at the start of stages 1..3, C doubles, H W halve)
//     -> norm (LN) -> forward_features: (B, H/32, W/32, 8C)
//     -> head: mean over the map -> dropout -> fc -> logits (B, classes)
//
// The window follows the resolution (spec section 5): ws = config.window_size, or, when that is 0,
// min(img_h, img_w) // 32 (7 at 224, 12 at 384). Each block then shrinks it to its stage as
// models/swin_window.h says. A model is built for one image size (its masks and windows depend on
// it, as timm's strict_img_size); another size is another config (`img_size` override), and an
// RPB checkpoint moves to the new window with resize_rel_pos_bias_table.
//
// State dict (timm's Swin, so `swin_*_patch4_window7_224` weights load unchanged):
//   patch_embed.proj.{weight,bias}  patch_embed.norm.{weight,bias}
//   layers.{s}.downsample.{norm.weight, norm.bias, reduction.weight}                 s = 1..3
//   layers.{s}.blocks.{b}.norm1.*  .attn.relative_position_bias_table (RPB)  .attn.rope_freqs (RoPE)
//   layers.{s}.blocks.{b}.attn.qkv.*  .attn.proj.*  .norm2.*  .mlp.fc1.*  .mlp.fc2.*
//   norm.{weight,bias}  head.fc.{weight,bias}
// relative_position_index, rope_pos and attn_mask are non-persistent buffers (recomputed).
// NV's RoPE-Swin checkpoints (MS naming) map to this by: layers.{s}.downsample -> layers.{s+1}.downsample,
// head.* -> head.fc.*, and dropping rope_t_x / rope_t_y / relative_position_index / attn_mask
// (tools/swin_rope_reference.py, nv_to_timm_key).
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "models/model.h"
#include "models/swin_stage.h"

namespace rv::models {

// timm's PatchEmbed with a norm, NHWC out: (B, C_in, H, W) -> (B, H/p, W/p, C).
class SwinPatchEmbed : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::Conv2d> proj;
  std::shared_ptr<nn::LayerNorm> norm;
  SwinPatchEmbed(int64_t in_chans, int64_t embed_dim, int64_t patch, double norm_eps, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "PatchEmbed"; }
};

// timm's ClassifierHead (avg pool over NHWC, dropout, fc); fc is absent when num_classes = 0.
class SwinHead : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::Linear> fc;
  SwinHead(int64_t in_features, int64_t num_classes, double drop_rate, Generator& gen);
  Tensor forward(const Tensor& x) override { return forward(x, false); }
  Tensor forward(const Tensor& x, bool pre_logits);  // (B, H, W, C) -> (B, classes) or (B, C)
  std::string type_name() const override { return "ClassifierHead"; }
};

// The window size a config asks for before the per-stage rule: window_size, or min(img) // 32.
int64_t swin_window_size(const ModelConfig& cfg);

class SwinTransformer : public Model {
 public:
  std::shared_ptr<SwinPatchEmbed> patch_embed;
  std::shared_ptr<nn::ModuleList> layers;  // SwinStage
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<SwinHead> head;

  explicit SwinTransformer(const ModelConfig& cfg);

  Tensor forward_features(const Tensor& images) override;  // -> (B, H/32, W/32, 8C) after norm
  Tensor forward_head(const Tensor& features, bool pre_logits = false) override;
  // Stage outputs (before the final norm, as timm's default) as (B, C_s, H_s, W_s).
  std::vector<Tensor> forward_intermediates(const Tensor& images, const std::vector<int64_t>& indices) override;
  std::vector<FeatureInfo> feature_info() const override;
  std::set<std::string> no_weight_decay() const override;

  std::shared_ptr<SwinStage> stage(size_t s) const { return layers->get<SwinStage>(s); }
  int64_t num_features() const { return feature_dim_; }
  std::string type_name() const override { return "SwinTransformer"; }

 private:
  Tensor embed(const Tensor& images);  // checks the size, patch_embed
  int64_t feature_dim_;
};

// The registry's builder (registry_families.cpp) and the named configs (swin_configs.cpp).
std::shared_ptr<Model> build_swin(const ModelConfig& cfg);
std::vector<ModelConfig> swin_configs();

}  // namespace rv::models
