// fcn_head.cpp: FcnHead: 3x3 ConvModules on one level, then the classifier.
#include "models/seg/fcn_head.h"

#include <stdexcept>
#include <string>

namespace rv::models::seg {

FcnHead::FcnHead(const FcnHeadOptions& options, Generator& gen)
    : DecodeHead(options.channels, options.num_classes, options.dropout_ratio, gen), opt_(options) {
  if (opt_.num_convs < 1) throw std::invalid_argument("FcnHead: expected num_convs >= 1, got " + std::to_string(opt_.num_convs));
  if (opt_.in_index < 0 || opt_.in_index > 3)
    throw std::invalid_argument("FcnHead: expected in_index in [0, 3], got " + std::to_string(opt_.in_index));
  convs = register_module("convs", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < opt_.num_convs; ++i)
    convs->push_back(std::make_shared<ConvModule>(i == 0 ? opt_.in_channels : opt_.channels, opt_.channels, 3, gen));
  init_conv_modules(gen);
}

Tensor FcnHead::forward(const std::vector<Tensor>& levels) {
  if (size_t(opt_.in_index) >= levels.size())
    throw std::invalid_argument("FcnHead: reads level " + std::to_string(opt_.in_index) + " but got " +
                                std::to_string(levels.size()) + " levels");
  return cls_seg(convs->forward(levels[size_t(opt_.in_index)]));
}

}  // namespace rv::models::seg
