// vit_seg_backbone.h: the ViT as a segmentation backbone: four block outputs turned into a
// 4-level pyramid (BEiT's semantic_segmentation backbone, which mmseg ports as Feature2Pyramid).
//
//   images (B, 3, H, W) -> blocks out_indices (default 2, 5, 8, 11 of 12), CLS dropped,
//   each (B, C, H/16, W/16), not normed ->
//     fpn1: ConvTranspose 2x2/2 -> BatchNorm2d -> GELU -> ConvTranspose 2x2/2   (B, C, H/4,  W/4)
//     fpn2: ConvTranspose 2x2/2                                                 (B, C, H/8,  W/8)
//     fpn3: identity                                                            (B, C, H/16, W/16)
//     fpn4: MaxPool 2x2/2                                                       (B, C, H/32, W/32)
//
// Followed: microsoft/unilm beit/semantic_segmentation/backbone/beit.py (BEiT.forward_features
// and its fpn1..fpn4 for patch 16; the same layers as mmseg's necks/featurepyramid.py). RoPE-ViT's
// own segmentation code was never released (spec/rope-vit.md, "detection and segmentation code"), so its neck is assumed
// to be BEiT's, which DeiT-III's segmentation results also used. The ViT itself runs at any input
// size: RoPE is evaluated on the new grid (32x32 at 512) and APE resampled bicubic.
//
// State dict: the ViT's timm names without its final norm and head (cls_token, pos_embed,
// patch_embed.*, rope.freqs, blocks.*), then fpn1.0.{weight,bias}, fpn1.1.* (BatchNorm2d, the
// SyncBatchNorm of BEiT), fpn1.3.*, fpn2.0.*; fpn3 and fpn4 hold nothing.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/seg/seg_backbone.h"
#include "models/vit.h"

namespace rv::models::seg {

// BEiT / mmseg take blocks 4, 6, 8, 12 or 3, 6, 9, 12 (1-based); we default to the latter:
// {d/4 - 1, d/2 - 1, 3d/4 - 1, d - 1}, i.e. 2, 5, 8, 11 for depth 12 and 5, 11, 17, 23 for 24.
std::vector<int64_t> default_vit_out_indices(int64_t depth);

class VitSegBackbone : public SegBackbone {
 public:
  std::shared_ptr<nn::Sequential> fpn1, fpn2;  // the deconvolutions (stride 4 and 8)
  std::shared_ptr<nn::Identity> fpn3;          // stride 16
  std::shared_ptr<nn::Functional> fpn4;        // max pool, stride 32

  // cfg: a ViT config (its num_classes is ignored: no head is built); out_indices: four block
  // indices in increasing order ({} = default_vit_out_indices). Neck weights come from `gen`.
  VitSegBackbone(const ModelConfig& cfg, std::vector<int64_t> out_indices, Generator& gen);

  std::vector<Tensor> forward(const Tensor& images) override;
  std::vector<int64_t> out_channels() const override;
  const std::shared_ptr<Model>& model() const override { return model_; }
  int64_t size_divisor() const override { return 2 * model_->config().patch_size; }
  const std::vector<int64_t>& out_indices() const { return indices_; }
  std::string type_name() const override { return "BEiT"; }

 private:
  std::shared_ptr<Model> model_;  // the VisionTransformer
  std::vector<int64_t> indices_;
};

}  // namespace rv::models::seg
