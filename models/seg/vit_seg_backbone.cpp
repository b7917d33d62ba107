// vit_seg_backbone.cpp: VitSegBackbone: block outputs of a VisionTransformer through fpn1..fpn4.
#include "models/seg/vit_seg_backbone.h"

#include <stdexcept>
#include <string>

#include "engine/ops/pool.h"

namespace rv::models::seg {

std::vector<int64_t> default_vit_out_indices(int64_t depth) {
  if (depth < 4 || depth % 4 != 0)
    throw std::invalid_argument("default_vit_out_indices: expected a depth divisible by 4 (e.g. 12), got " +
                                std::to_string(depth) + "; give the four block indices explicitly");
  return {depth / 4 - 1, depth / 2 - 1, 3 * depth / 4 - 1, depth - 1};
}

VitSegBackbone::VitSegBackbone(const ModelConfig& cfg, std::vector<int64_t> out_indices, Generator& gen)
    : indices_(std::move(out_indices)) {
  if (cfg.arch != "vit") throw std::invalid_argument("VitSegBackbone: expected a ViT config (arch 'vit'), got '" + cfg.arch + "'");
  if (cfg.patch_size != 16)
    throw std::invalid_argument("VitSegBackbone: the fpn1..fpn4 neck is defined for patch 16 (strides 4..32), got patch " +
                                std::to_string(cfg.patch_size));
  ModelConfig c = cfg;
  c.num_classes = 0;  // features only
  auto vit = std::make_shared<VisionTransformer>(c);
  model_ = vit;
  const int64_t depth = c.depths.at(0);
  if (indices_.empty()) indices_ = default_vit_out_indices(depth);
  if (indices_.size() != 4)
    throw std::invalid_argument("VitSegBackbone: expected 4 out_indices (one block per pyramid level), got " +
                                std::to_string(indices_.size()));
  for (size_t i = 0; i < 4; ++i)
    if (indices_[i] < 0 || indices_[i] >= depth || (i > 0 && indices_[i] <= indices_[i - 1]))
      throw std::invalid_argument("VitSegBackbone: expected increasing out_indices in [0, " + std::to_string(depth) +
                                  "), got " + std::to_string(indices_[i]) + " at position " + std::to_string(i));

  // The ViT's own tensors and children, under its names (timm order), minus norm / fc_norm / head.
  if (vit->cls_token.defined()) register_parameter("cls_token", vit->cls_token);
  if (vit->pos_embed.defined()) register_parameter("pos_embed", vit->pos_embed);
  register_module("patch_embed", vit->patch_embed);
  if (vit->rope) register_module("rope", vit->rope);
  register_module("blocks", vit->blocks);

  const int64_t C = c.embed_dim;
  const nn::ConvTranspose2dOptions up2{.stride = {2, 2}};
  fpn1 = register_module("fpn1", std::make_shared<nn::Sequential>());
  fpn1->push_back(std::make_shared<nn::ConvTranspose2d>(C, C, Pair{2, 2}, gen, up2));
  fpn1->push_back(std::make_shared<nn::BatchNorm2d>(C));  // SyncBatchNorm in BEiT (see conv_module.h)
  fpn1->push_back(std::make_shared<nn::GELU>());
  fpn1->push_back(std::make_shared<nn::ConvTranspose2d>(C, C, Pair{2, 2}, gen, up2));
  fpn2 = register_module("fpn2", std::make_shared<nn::Sequential>());
  fpn2->push_back(std::make_shared<nn::ConvTranspose2d>(C, C, Pair{2, 2}, gen, up2));
  fpn3 = register_module("fpn3", std::make_shared<nn::Identity>());
  fpn4 = register_module("fpn4", std::make_shared<nn::Functional>(
                                     "MaxPool2d", [](const Tensor& x) { return max_pool2d(x, {2, 2}, {2, 2}); }));
}

std::vector<Tensor> VitSegBackbone::forward(const Tensor& images) {
  const int64_t d = size_divisor();
  if (images.dim() != 4 || images.size(2) % d != 0 || images.size(3) % d != 0)
    throw std::invalid_argument("VitSegBackbone: expected images (B, C, H, W) with H and W multiples of " +
                                std::to_string(d) + " (the stride-32 level needs whole pixels), got " +
                                shape_str(images.shape()));
  std::vector<Tensor> maps = model_->forward_intermediates(images, indices_);  // 4 x (B, C, H/16, W/16)
  return {fpn1->forward(maps[0]), fpn2->forward(maps[1]), fpn3->forward(maps[2]), fpn4->forward(maps[3])};
}

std::vector<int64_t> VitSegBackbone::out_channels() const {
  const int64_t C = model_->config().embed_dim;
  return {C, C, C, C};
}

}  // namespace rv::models::seg
