// decode_head.cpp: DecodeHead's classifier and mmseg's head init.
#include "models/seg/decode_head.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "models/seg/conv_module.h"

namespace rv::models::seg {

DecodeHead::DecodeHead(int64_t channels, int64_t num_classes, double dropout_ratio, Generator& gen) {
  if (num_classes <= 0) throw std::invalid_argument("DecodeHead: expected num_classes > 0, got " + std::to_string(num_classes));
  conv_seg = register_module("conv_seg", std::make_shared<nn::Conv2d>(channels, num_classes, Pair{1, 1}, gen));
  dropout = register_module("dropout", std::make_shared<nn::Dropout2d>(dropout_ratio));
  if (!nn::init::init_skipped()) {
    nn::init::normal_(conv_seg->weight, gen, 0.0, 0.01);
    nn::init::zeros_(conv_seg->bias);
  }
}

Tensor DecodeHead::cls_seg(const Tensor& features) { return conv_seg->forward(dropout->forward(features)); }

void DecodeHead::init_conv_modules(Generator& gen) {
  if (nn::init::init_skipped()) return;
  for (auto& [name, m] : named_modules())
    if (auto* cm = dynamic_cast<ConvModule*>(m)) {
      // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (O * KH * KW)).
      const Shape& w = cm->conv->weight.shape();
      nn::init::normal_(cm->conv->weight, gen, 0.0, std::sqrt(2.0 / double(w[0] * w[2] * w[3])));
      // The BatchNorm keeps its construction values: weight 1, bias 0 (mmcv's constant_init).
    }
}

}  // namespace rv::models::seg
