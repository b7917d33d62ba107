// swin_seg_backbone.cpp: SwinSegBackbone: the four stage outputs of a SwinTransformer, each normed.
#include "models/seg/swin_seg_backbone.h"

#include <stdexcept>
#include <string>

namespace rv::models::seg {

SwinSegBackbone::SwinSegBackbone(const ModelConfig& cfg) {
  if (cfg.arch != "swin")
    throw std::invalid_argument("SwinSegBackbone: expected a Swin config (arch 'swin'), got '" + cfg.arch + "'");
  if (cfg.depths.size() != 4)
    throw std::invalid_argument("SwinSegBackbone: expected 4 stages (strides 4, 8, 16, 32), got " +
                                std::to_string(cfg.depths.size()));
  ModelConfig c = cfg;
  c.num_classes = 0;
  auto swin = std::make_shared<SwinTransformer>(c);
  model_ = swin;
  register_module("patch_embed", swin->patch_embed);
  register_module("layers", swin->layers);
  for (int64_t s = 0; s < 4; ++s)
    norms.push_back(register_module("norm" + std::to_string(s),
                                    std::make_shared<nn::LayerNorm>(c.embed_dim << s, c.norm_eps)));
}

std::vector<Tensor> SwinSegBackbone::forward(const Tensor& images) {
  std::vector<Tensor> maps = model_->forward_intermediates(images, {0, 1, 2, 3});  // (B, C_s, H_s, W_s)
  for (size_t s = 0; s < 4; ++s)  // LN over channels: to (B, H_s, W_s, C_s) and back, as mmseg
    maps[s] = norms[s]->forward(maps[s].permute({0, 2, 3, 1})).permute({0, 3, 1, 2}).contiguous();
  return maps;
}

std::vector<int64_t> SwinSegBackbone::out_channels() const {
  const int64_t C = model_->config().embed_dim;
  return {C, 2 * C, 4 * C, 8 * C};
}

}  // namespace rv::models::seg
