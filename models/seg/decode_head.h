// decode_head.h: DecodeHead, what mmseg's decode heads share: the classifier at their end.
//
//   features (B, channels, h, w) -> dropout (Dropout2d, whole channels) -> conv_seg 1x1 -> (B, K, h, w)
//
// mmseg's BaseDecodeHead registers conv_seg before anything else, so its weights come first in the
// head's state dict (`decode_head.conv_seg.weight`, then the head's own layers). Init as mmseg's
// heads: conv_seg ~ N(0, 0.01) with zero bias; each ConvModule's conv kaiming normal (fan_out, ReLU
// gain) and its BatchNorm ones / zeros (mmcv's ConvModule.init_weights).
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"

namespace rv::models::seg {

class DecodeHead : public nn::Module {
 public:
  std::shared_ptr<nn::Conv2d> conv_seg;    // 1x1, channels -> num_classes, with bias
  std::shared_ptr<nn::Dropout2d> dropout;  // p = dropout_ratio (0.1 in mmseg's configs)

  // The four backbone levels (strides 4, 8, 16, 32) -> logits (B, K, H/4, W/4) (UPerHead) or at
  // the stride of the level the head reads (FCNHead).
  virtual Tensor forward(const std::vector<Tensor>& levels) = 0;
  int64_t num_classes() const { return conv_seg->out_channels(); }

 protected:
  DecodeHead(int64_t channels, int64_t num_classes, double dropout_ratio, Generator& gen);
  Tensor cls_seg(const Tensor& features);  // dropout, then conv_seg
  // mmseg's init of every ConvModule below this head (call at the end of the constructor).
  void init_conv_modules(Generator& gen);
};

}  // namespace rv::models::seg
