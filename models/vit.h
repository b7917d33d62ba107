// vit.h: VisionTransformer, the ViT family (DeiT-III "LS" ViT of RoPE-ViT, spec section 1): one
// class for every position embedding (ModelConfig::pos_embed):
//
//   ape             DeiT-III: learned APE on the patch tokens (deit3_*); with ape_on_cls, the
//                   original ViT, whose APE also has a row for the CLS token (vit_*_patch16_224)
//   rope_axial      RoPE with fixed axial frequencies (vit_*_patch16_rope_224)
//   rope_mixed      RoPE with learned mixed frequencies (vit_*_patch16_rope_mixed_224)
//   rope_*_ape      both: APE once at the input, RoPE in every block (..._rope_ape_224, ..._rope_mixed_ape_224)
//
// Data flow (P = 1 prefix token, the CLS; N = 1 + Gh*Gw):
//   images (B, 3, H, W) -> patch_embed -> (B, Gh*Gw, C)           [Gh = H/16, Gw = W/16, any size]
//     -> + pos_embed (1, Gh*Gw, C), resampled bicubic when the grid is not the config's
//     -> prepend cls_token -> x (B, N, C)
//        (ape_on_cls: prepend first, then add pos_embed (1, N, C), whose CLS row is not resampled)
//     -> blocks[l](x, rope angles of layer l for this grid; CLS not rotated) -> norm -> (B, N, C)
//   forward_head: x[:, 0] (the CLS token) -> head_drop -> head Linear(C, classes) -> (B, classes)
//   global_pool avg (timm's option): no final norm on the tokens; forward_head takes the mean of
//   the patch tokens -> fc_norm -> head_drop -> head. With class_token false there is no CLS
//   (P = 0) and every token is rotated.
//
// State dict names and order are timm's: VisionTransformer for the APE-only models (ls1.gamma),
// Eva for the RoPE ones (gamma_1, rope.freqs), so timm checkpoints load unchanged:
//   cls_token, [pos_embed], patch_embed.proj.{weight,bias}, [rope.freqs], blocks.{i}.*, norm.*, head.*
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/nn/containers.h"
#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/nn/norm.h"
#include "models/model.h"
#include "models/patch_embed.h"
#include "models/rope_vit.h"
#include "models/vit_block.h"

namespace rv::models {

class VisionTransformer : public Model {
 public:
  Tensor cls_token;   // (1, 1, C); absent with class_token = false
  Tensor pos_embed;   // APE only: (1, P + Gh*Gw, C) for the config's grid; P = 1 with ape_on_cls
  std::shared_ptr<PatchEmbed> patch_embed;
  std::shared_ptr<VitRope> rope;          // RoPE only
  std::shared_ptr<nn::ModuleList> blocks;  // depth VitBlocks
  std::shared_ptr<nn::LayerNorm> norm;     // global_pool token: the final norm of the tokens
  std::shared_ptr<nn::LayerNorm> fc_norm;  // global_pool avg: the norm after pooling (norm is absent)
  std::shared_ptr<nn::Dropout> head_drop;
  std::shared_ptr<nn::Linear> head;        // absent when num_classes = 0

  // Builds from a validated config; weights from Generator(cfg.seed) unless a SkipInitGuard is
  // active. Dropout and drop path get their own stream, Generator(cfg.seed, 1) (replace it with
  // nn::set_generator).
  explicit VisionTransformer(const ModelConfig& cfg);

  // images (B, in_chans, H, W), H and W multiples of the patch -> tokens (B, P + Gh*Gw, C), normed
  // (global_pool token) or as the last block left them (avg: fc_norm comes after the pooling).
  Tensor forward_features(const Tensor& images) override;
  // tokens (B, N, C) -> logits (B, classes); pre_logits or no head: the CLS features (B, C).
  Tensor forward_head(const Tensor& features, bool pre_logits = false) override;
  // The outputs of the given blocks (before the final norm), CLS dropped, as (B, C, Gh, Gw) maps,
  // one per index in the order given; negative indices count from the end. Blocks after the
  // last one asked for are not run.
  std::vector<Tensor> forward_intermediates(const Tensor& images, const std::vector<int64_t>& indices) override;
  // ViTDet's backbone pass (Li et al. 2022), for detection at large inputs: the patch tokens
  // only (the CLS token dropped; APE, if any, resampled to the grid), the blocks listed in
  // `global_blocks` attending over the whole grid, every other block within window x window
  // squares (VitBlock::forward_windowed). Returns the last block's output, without the final
  // norm, as a map (B, C, Gh, Gw). Negative block indices count from the end.
  Tensor forward_windowed(const Tensor& images, int64_t window, const std::vector<int64_t>& global_blocks);
  std::vector<FeatureInfo> feature_info() const override;  // blocks.i: C channels, reduction = patch
  std::set<std::string> no_weight_decay() const override;  // pos_embed, cls_token, rope.freqs

  int64_t num_prefix_tokens() const { return cfg_.class_token ? 1 : 0; }  // the CLS token
  Grid config_grid() const { return {cfg_.img_h / cfg_.patch_size, cfg_.img_w / cfg_.patch_size}; }
  std::shared_ptr<VitBlock> block(size_t i) const { return blocks->get<VitBlock>(i); }

 private:
  // images -> tokens (B, N, C) with CLS and APE, and the grid.
  std::pair<Tensor, Grid> embed(const Tensor& images);
  std::string who() const;
};

// The registered ViT configs (vit_configs.cpp) and the builder the registry calls.
std::vector<ModelConfig> vit_configs();
std::shared_ptr<Model> build_vit(const ModelConfig& cfg);

}  // namespace rv::models
