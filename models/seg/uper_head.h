// uper_head.h: UPerHead, the UperNet decoder (Xiao et al. 2018) as mmseg's decode_heads/uper_head.py.
//
//   levels x_0..x_3 (B, C_i, H_i, W_i), strides 4, 8, 16, 32; c = channels (512 in mmseg)
//   PPM on x_3: for s in pool_scales (1, 2, 3, 6): AdaptiveAvgPool s x s -> ConvModule 1x1 (C_3 -> c)
//               -> bilinear (align_corners false) back to H_3 x W_3
//     bottleneck: ConvModule 3x3 on cat[x_3, the 4 pooled maps] (C_3 + 4c -> c)   = lateral 3
//   lateral_convs[i]: ConvModule 1x1 (C_i -> c), i = 0..2                         = lateral i
//   top-down: for i = 3..1: lateral[i-1] += bilinear(lateral[i] to lateral[i-1]'s size)
//   fpn_convs[i]: ConvModule 3x3 (c -> c) on lateral[i], i = 0..2; level 3 is lateral 3 itself
//   every level bilinear to H_0 x W_0, cat (4c) -> fpn_bottleneck ConvModule 3x3 (4c -> c)
//   -> dropout -> conv_seg 1x1 -> logits (B, K, H_0, W_0)
//
// State dict (mmseg's names under decode_head.): conv_seg.*, psp_modules.{j}.1.conv.weight,
// psp_modules.{j}.1.bn.*, bottleneck.*, lateral_convs.{i}.*, fpn_convs.{i}.*, fpn_bottleneck.*.
#pragma once
#include <memory>
#include <vector>

#include "models/seg/conv_module.h"
#include "models/seg/decode_head.h"

namespace rv::models::seg {

struct UperHeadOptions {
  std::vector<int64_t> in_channels;               // C_0 .. C_3
  int64_t channels = 512;                         // c
  int64_t num_classes = 150;                      // K
  std::vector<int64_t> pool_scales = {1, 2, 3, 6};
  double dropout_ratio = 0.1;
};

class UperHead : public DecodeHead {
 public:
  std::shared_ptr<nn::ModuleList> psp_modules;    // Sequential{AdaptiveAvgPool2d, ConvModule} per scale
  std::shared_ptr<ConvModule> bottleneck;
  std::shared_ptr<nn::ModuleList> lateral_convs;  // ConvModule 1x1, levels 0..2
  std::shared_ptr<nn::ModuleList> fpn_convs;      // ConvModule 3x3, levels 0..2
  std::shared_ptr<ConvModule> fpn_bottleneck;

  UperHead(const UperHeadOptions& options, Generator& gen);
  Tensor forward(const std::vector<Tensor>& levels) override;  // -> (B, K, H_0, W_0)
  std::string type_name() const override { return "UPerHead"; }

 private:
  Tensor psp_forward(const Tensor& x);  // x_3 (B, C_3, H_3, W_3) -> (B, c, H_3, W_3)
  UperHeadOptions opt_;
};

}  // namespace rv::models::seg
