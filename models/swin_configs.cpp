// swin_configs.cpp: the registered Swin models: Swin-T/S/B with relative position bias (timm's
// `swin_{tiny,small,base}_patch4_window7_224`, whose weights load unchanged) and with RoPE-Axial
// or RoPE-Mixed in place of the bias (`..._window7_rope_{axial,mixed}_224`, NV's
// `swin_rope_{axial,mixed}_*`; spec/rope-vit.md section 5).
//
// All: patch 4, MLP ratio 4, qkv bias, LayerNorm eps 1e-5, window 0 = img_size // 32 (7 at 224),
// stochastic depth 0.2 / 0.3 / 0.5 (T / S / B, the training recipe), RoPE-Axial theta 50,
// RoPE-Mixed init theta 10.
#include "models/swin.h"

namespace rv::models {

std::vector<ModelConfig> swin_configs() {
  struct Size {
    const char* name;
    int64_t embed_dim;
    std::vector<int64_t> depths, heads;
    double drop_path;
  };
  const Size sizes[] = {
      {"tiny", 96, {2, 2, 6, 2}, {3, 6, 12, 24}, 0.2},
      {"small", 96, {2, 2, 18, 2}, {3, 6, 12, 24}, 0.3},
      {"base", 128, {2, 2, 18, 2}, {4, 8, 16, 32}, 0.5},
  };
  struct Pos {
    const char* pos_embed;
    const char* suffix;  // between "window7_" and "224"
  };
  const Pos kinds[] = {{"rpb", ""}, {"rope_axial", "rope_axial_"}, {"rope_mixed", "rope_mixed_"}};
  std::vector<ModelConfig> out;
  for (const Pos& p : kinds)
    for (const Size& s : sizes) {
      ModelConfig c;
      c.name = std::string("swin_") + s.name + "_patch4_window7_" + p.suffix + "224";
      c.arch = "swin";
      c.pos_embed = p.pos_embed;
      c.img_h = c.img_w = 224;
      c.patch_size = 4;
      c.embed_dim = s.embed_dim;
      c.depths = s.depths;
      c.num_heads = s.heads;
      c.mlp_ratio = 4.0;
      c.qkv_bias = true;
      c.layer_scale_init = 0.0;  // Swin has no LayerScale
      c.norm_eps = 1e-5;
      c.drop_path_rate = s.drop_path;
      c.rope_theta = 50.0;
      c.rope_mixed_theta = 10.0;
      c.window_size = 0;
      out.push_back(c);
    }
  return out;
}

}  // namespace rv::models
