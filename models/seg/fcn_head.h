// fcn_head.h: FCNHead, mmseg's decode_heads/fcn_head.py in the form UperNet's auxiliary head uses:
// num_convs 1, kernel 3, concat_input false, on one backbone level (in_index 2, stride 16).
//
//   x_{in_index} (B, C, h, w) -> convs.0: ConvModule 3x3 (C -> channels) -> dropout -> conv_seg -> (B, K, h, w)
//
// State dict (under auxiliary_head.): conv_seg.*, convs.0.conv.weight, convs.0.bn.*.
#pragma once
#include <memory>
#include <vector>

#include "models/seg/conv_module.h"
#include "models/seg/decode_head.h"

namespace rv::models::seg {

struct FcnHeadOptions {
  int64_t in_channels = 0;   // C of the level read
  int64_t in_index = 2;      // which level (0..3)
  int64_t channels = 256;
  int64_t num_convs = 1;     // 3x3 ConvModules before the classifier, >= 1 (mmseg also allows 0)
  int64_t num_classes = 150;
  double dropout_ratio = 0.1;
};

class FcnHead : public DecodeHead {
 public:
  std::shared_ptr<nn::Sequential> convs;  // num_convs ConvModules

  FcnHead(const FcnHeadOptions& options, Generator& gen);
  Tensor forward(const std::vector<Tensor>& levels) override;  // -> (B, K, h, w) of level in_index
  std::string type_name() const override { return "FCNHead"; }

 private:
  FcnHeadOptions opt_;
};

}  // namespace rv::models::seg
