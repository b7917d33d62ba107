// vit_configs.cpp: the registered ViT models, by timm's names (the registry's "vit" family).
//
// Sizes (patch 16, MLP ratio 4, qkv bias, LayerNorm eps 1e-6, head dim 64 throughout):
//   tiny C=192 NH=3, small C=384 NH=6, medium C=512 NH=8 (DeiT-III only), base C=768 NH=12
//   (all 12 blocks), large C=1024 NH=16 (24 blocks).
// Families:
//   deit3_{small,medium,base,large}_patch16_224   DeiT-III: APE on patch tokens, LayerScale (the
//       paper's APE baseline); the sizes timm has (it has no tiny)
//   vit_{tiny,small,base,large}_patch16_224        the original ViT: APE with a CLS row, no LayerScale
//   vit_{size}_patch16_rope_224                    RoPE-Axial, theta 100
//   vit_{size}_patch16_rope_mixed_224              RoPE-Mixed, init theta 10
//   vit_{size}_patch16_rope_ape_224                RoPE-Axial + APE
//   vit_{size}_patch16_rope_mixed_ape_224          RoPE-Mixed + APE
// for size in tiny, small, base, large. timm has no tiny RoPE models: vit_tiny_patch16_rope*_224
// are the obvious configs (ViT-Ti dims with the RoPE-ViT recipe), built here only.
//
// LayerScale starts at 1e-4, the RoPE-ViT / DeiT-III 400-epoch recipe (spec section 7); timm's
// builders use 1e-5 (RoPE) and 1e-6 (deit3), which only matters when training from scratch.
#include <string>
#include <vector>

#include "models/vit.h"

namespace rv::models {
namespace {

struct VitSize {
  const char* name;
  int64_t dim, depth, heads;
};
constexpr VitSize kTiny{"tiny", 192, 12, 3}, kSmall{"small", 384, 12, 6}, kMedium{"medium", 512, 12, 8},
    kBase{"base", 768, 12, 12}, kLarge{"large", 1024, 24, 16};

ModelConfig vit_config(const std::string& name, const VitSize& s, const std::string& pos_embed) {
  ModelConfig c;
  c.name = name;
  c.arch = "vit";
  c.pos_embed = pos_embed;
  c.img_h = c.img_w = 224;
  c.patch_size = 16;
  c.embed_dim = s.dim;
  c.depths = {s.depth};
  c.num_heads = {s.heads};
  c.mlp_ratio = 4.0;
  c.qkv_bias = true;
  c.norm_eps = 1e-6;
  c.layer_scale_init = 1e-4;
  c.rope_theta = 100.0;       // RoPE-Axial ViT
  c.rope_mixed_theta = 10.0;  // RoPE-Mixed init
  return c;
}

}  // namespace

std::vector<ModelConfig> vit_configs() {
  std::vector<ModelConfig> out;
  for (const VitSize& s : {kSmall, kMedium, kBase, kLarge})
    out.push_back(vit_config("deit3_" + std::string(s.name) + "_patch16_224", s, "ape"));
  for (const VitSize& s : {kTiny, kSmall, kBase, kLarge}) {
    const std::string stem = "vit_" + std::string(s.name) + "_patch16_";
    ModelConfig original = vit_config(stem + "224", s, "ape");
    original.ape_on_cls = true;
    original.layer_scale_init = 0.0;
    out.push_back(original);
    out.push_back(vit_config(stem + "rope_224", s, "rope_axial"));
    out.push_back(vit_config(stem + "rope_mixed_224", s, "rope_mixed"));
    out.push_back(vit_config(stem + "rope_ape_224", s, "rope_axial_ape"));
    out.push_back(vit_config(stem + "rope_mixed_ape_224", s, "rope_mixed_ape"));
  }
  return out;
}

}  // namespace rv::models
