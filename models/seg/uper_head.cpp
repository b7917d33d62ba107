// uper_head.cpp: UPerHead: pyramid pooling on the top level, FPN top-down fusion, classifier.
#include "models/seg/uper_head.h"

#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/interpolate.h"
#include "engine/ops/pool.h"
#include "engine/ops/shape.h"

namespace rv::models::seg {

namespace {

// mmseg's resize(x, size, mode='bilinear', align_corners=False).
Tensor bilinear_to(const Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;  // F.interpolate to the same size is the identity
  return interpolate(x, {.size = {h, w}, .mode = "bilinear", .align_corners = false});
}

}  // namespace

UperHead::UperHead(const UperHeadOptions& options, Generator& gen)
    : DecodeHead(options.channels, options.num_classes, options.dropout_ratio, gen), opt_(options) {
  if (opt_.in_channels.size() != 4)
    throw std::invalid_argument("UperHead: expected in_channels for 4 levels, got " + std::to_string(opt_.in_channels.size()));
  if (opt_.pool_scales.empty()) throw std::invalid_argument("UperHead: expected at least one pool scale");
  const int64_t c = opt_.channels, top = opt_.in_channels[3];
  psp_modules = register_module("psp_modules", std::make_shared<nn::ModuleList>());
  for (int64_t s : opt_.pool_scales) {
    if (s <= 0) throw std::invalid_argument("UperHead: expected positive pool_scales, got " + std::to_string(s));
    auto branch = std::make_shared<nn::Sequential>();
    branch->push_back(std::make_shared<nn::Functional>(
        "AdaptiveAvgPool2d", [s](const Tensor& x) { return adaptive_avg_pool2d(x, {s, s}); }));
    branch->push_back(std::make_shared<ConvModule>(top, c, 1, gen));
    psp_modules->push_back(branch);
  }
  bottleneck = register_module(
      "bottleneck", std::make_shared<ConvModule>(top + int64_t(opt_.pool_scales.size()) * c, c, 3, gen));
  lateral_convs = register_module("lateral_convs", std::make_shared<nn::ModuleList>());
  fpn_convs = register_module("fpn_convs", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i + 1 < opt_.in_channels.size(); ++i) {  // every level but the top
    lateral_convs->push_back(std::make_shared<ConvModule>(opt_.in_channels[i], c, 1, gen));
    fpn_convs->push_back(std::make_shared<ConvModule>(c, c, 3, gen));
  }
  fpn_bottleneck = register_module("fpn_bottleneck", std::make_shared<ConvModule>(4 * c, c, 3, gen));
  init_conv_modules(gen);
}

Tensor UperHead::psp_forward(const Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  std::vector<Tensor> outs = {x};
  for (size_t j = 0; j < psp_modules->size(); ++j)
    outs.push_back(bilinear_to(psp_modules->get<nn::Sequential>(j)->forward(x), h, w));
  return bottleneck->forward(cat(outs, 1));  // (B, C_3 + S*c, h, w) -> (B, c, h, w)
}

Tensor UperHead::forward(const std::vector<Tensor>& levels) {
  if (levels.size() != 4) throw std::invalid_argument("UperHead: expected 4 levels, got " + std::to_string(levels.size()));
  for (size_t i = 0; i < 4; ++i)
    if (levels[i].dim() != 4 || levels[i].size(1) != opt_.in_channels[i])
      throw std::invalid_argument("UperHead: expected level " + std::to_string(i) + " of shape (B, " +
                                  std::to_string(opt_.in_channels[i]) + ", H, W), got " + shape_str(levels[i].shape()));
  std::vector<Tensor> lat;
  for (size_t i = 0; i < 3; ++i) lat.push_back(lateral_convs->get<ConvModule>(i)->forward(levels[i]));
  lat.push_back(psp_forward(levels[3]));
  for (size_t i = 3; i > 0; --i)  // top-down: each level receives the upsampled coarser one
    lat[i - 1] = add(lat[i - 1], bilinear_to(lat[i], lat[i - 1].size(2), lat[i - 1].size(3)));
  std::vector<Tensor> outs;
  for (size_t i = 0; i < 3; ++i) outs.push_back(fpn_convs->get<ConvModule>(i)->forward(lat[i]));
  outs.push_back(lat[3]);
  const int64_t h = outs[0].size(2), w = outs[0].size(3);
  for (size_t i = 1; i < 4; ++i) outs[i] = bilinear_to(outs[i], h, w);
  return cls_seg(fpn_bottleneck->forward(cat(outs, 1)));  // (B, 4c, h, w) -> (B, c, h, w) -> (B, K, h, w)
}

}  // namespace rv::models::seg
