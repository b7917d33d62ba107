// seg_backbone.h: SegBackbone, what a segmentation decoder needs from a backbone: four feature
// maps at strides 4, 8, 16 and 32 of the input (mmseg's backbone + neck output).
//
//   images (B, 3, H, W) -> { (B, C_0, H/4, W/4), (B, C_1, H/8, W/8), (B, C_2, H/16, W/16), (B, C_3, H/32, W/32) }
//
// The adapters (ViT: seg/vit_seg_backbone.h, Swin: seg/swin_seg_backbone.h) wrap a classification
// Model and register ITS parameters under their own names, so that the segmenter's state dict reads
// `backbone.blocks.3.attn.qkv.weight` (timm's names below `backbone.`) and a timm / NV checkpoint
// loads into `backbone` with strict = false (the classifier's head and final norm are not used).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/containers.h"
#include "models/model.h"

namespace rv::models::seg {

class SegBackbone : public nn::Module {
 public:
  virtual std::vector<Tensor> forward(const Tensor& images) = 0;  // four maps, strides 4 8 16 32
  virtual std::vector<int64_t> out_channels() const = 0;          // C_0 .. C_3
  // The wrapped classification model (its forward_intermediates does the work).
  virtual const std::shared_ptr<Model>& model() const = 0;
  // Size rule of the input: H and W must be multiples of this (16 for ViT/16, 32 for Swin, so
  // that every level has a whole number of pixels).
  virtual int64_t size_divisor() const = 0;

  // The wrapped model is not a registered child (its children are), so mode changes reach it here.
  void train(bool on = true) override {
    nn::Module::train(on);
    model()->train(on);
  }
};

}  // namespace rv::models::seg
