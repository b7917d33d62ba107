// swin_seg_backbone.h: the Swin Transformer as a segmentation backbone, as mmseg's SwinTransformer
// with out_indices (0, 1, 2, 3): each stage output gets its own LayerNorm (norm0 .. norm3).
//
//   images (B, 3, H, W) -> layers.s -> (B, H_s, W_s, C_s) -> norm{s} (LN over C_s) -> (B, C_s, H_s, W_s)
//   with C_s = C * 2^s and strides 4, 8, 16, 32.
//
// State dict: the Swin's timm names without its final norm and head (patch_embed.*, layers.*),
// then norm0.{weight,bias} .. norm3.* (mmseg's names; its Swin internals use other names than
// timm's, so an mmseg Swin checkpoint needs a key map before it loads, timm / NV ones do not).
// A Swin is built for one input size (its windows and masks depend on it): ModelConfig img_h /
// img_w must be the size the segmenter runs at (the crop, e.g. 512x512).
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/seg/seg_backbone.h"
#include "models/swin.h"

namespace rv::models::seg {

class SwinSegBackbone : public SegBackbone {
 public:
  std::vector<std::shared_ptr<nn::LayerNorm>> norms;  // norm0 .. norm3, over C_s

  explicit SwinSegBackbone(const ModelConfig& cfg);  // a Swin config with four stages

  std::vector<Tensor> forward(const Tensor& images) override;
  std::vector<int64_t> out_channels() const override;
  const std::shared_ptr<Model>& model() const override { return model_; }
  int64_t size_divisor() const override { return 8 * model_->config().patch_size; }
  std::string type_name() const override { return "SwinTransformer"; }

 private:
  std::shared_ptr<Model> model_;  // the SwinTransformer
};

}  // namespace rv::models::seg
