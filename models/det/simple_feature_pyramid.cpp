// simple_feature_pyramid.cpp: SimpleFeaturePyramid (simple_feature_pyramid.h).
#include "models/det/simple_feature_pyramid.h"

#include <cmath>
#include <stdexcept>

#include "engine/nn/activation.h"
#include "engine/nn/conv.h"
#include "engine/ops/pool.h"
#include "models/det/det_conv.h"

namespace rv::models::det {

namespace {

std::shared_ptr<nn::UnaryModule> make_norm(const std::string& norm, int64_t C) {
  if (norm.empty()) return nullptr;
  if (norm == "LN") return std::make_shared<LayerNorm2d>(C);
  throw std::invalid_argument("SimpleFeaturePyramid: norm must be \"LN\" or \"\" (none), got \"" + norm + "\"");
}

std::shared_ptr<nn::Functional> max_pool(int64_t kernel, int64_t stride) {
  return std::make_shared<nn::Functional>("MaxPool2d", [kernel, stride](const Tensor& x) {
    return max_pool2d(x, {kernel}, {stride});
  });
}

}  // namespace

SimpleFeaturePyramid::SimpleFeaturePyramid(const SimpleFeaturePyramidOptions& options, Generator& gen) : opt_(options) {
  const int64_t C = opt_.in_channels, out = opt_.out_channels;
  if (C <= 0 || out <= 0) throw std::invalid_argument("SimpleFeaturePyramid: channel counts must be positive");
  if (opt_.scale_factors.empty()) throw std::invalid_argument("SimpleFeaturePyramid: scale_factors is empty");
  const bool bias = opt_.norm.empty();  // detectron2: a conv followed by a norm has no bias
  for (double scale : opt_.scale_factors) {
    auto seq = std::make_shared<nn::Sequential>();
    int64_t dim = C;
    if (scale == 4.0) {
      if (C % 4 != 0) throw std::invalid_argument("SimpleFeaturePyramid: scale 4 needs in_channels divisible by 4");
      seq->push_back(std::make_shared<nn::ConvTranspose2d>(C, C / 2, Pair{2, 2}, gen,
                                                           nn::ConvTranspose2dOptions{.stride = {2, 2}}));
      if (auto n = make_norm(opt_.norm, C / 2)) seq->push_back(n);
      seq->push_back(std::make_shared<nn::GELU>());
      seq->push_back(std::make_shared<nn::ConvTranspose2d>(C / 2, C / 4, Pair{2, 2}, gen,
                                                           nn::ConvTranspose2dOptions{.stride = {2, 2}}));
      dim = C / 4;
    } else if (scale == 2.0) {
      if (C % 2 != 0) throw std::invalid_argument("SimpleFeaturePyramid: scale 2 needs an even in_channels");
      seq->push_back(std::make_shared<nn::ConvTranspose2d>(C, C / 2, Pair{2, 2}, gen,
                                                           nn::ConvTranspose2dOptions{.stride = {2, 2}}));
      dim = C / 2;
    } else if (scale == 0.5) {
      seq->push_back(max_pool(2, 2));
    } else if (scale != 1.0) {
      throw std::invalid_argument("SimpleFeaturePyramid: scale factor " + std::to_string(scale) +
                                  " is not one of 4, 2, 1, 0.5");
    }
    seq->push_back(std::make_shared<ConvWithNorm>(dim, out, Pair{1, 1}, gen, nn::Conv2dOptions{.bias = bias},
                                                  make_norm(opt_.norm, out)));
    seq->push_back(std::make_shared<ConvWithNorm>(out, out, Pair{3, 3}, gen,
                                                  nn::Conv2dOptions{.padding = {1, 1}, .bias = bias},
                                                  make_norm(opt_.norm, out)));
    const int64_t stride = int64_t(std::llround(double(opt_.input_stride) / scale));
    const int64_t stage = int64_t(std::llround(std::log2(double(stride))));
    levels_.push_back(register_module("simfp_" + std::to_string(stage), seq));
    strides_.push_back(stride);
  }
  if (opt_.top_block) strides_.push_back(strides_.back() * 2);
}

std::vector<Tensor> SimpleFeaturePyramid::forward(const Tensor& feature) {
  if (feature.dim() != 4 || feature.size(1) != opt_.in_channels)
    throw std::invalid_argument("SimpleFeaturePyramid: expected a feature map (B, " + std::to_string(opt_.in_channels) +
                                ", h, w), got " + shape_str(feature.shape()));
  std::vector<Tensor> out;
  for (const auto& level : levels_) out.push_back(level->forward(feature));
  if (opt_.top_block) out.push_back(max_pool2d(out.back(), {1}, {2}));  // detectron2's LastLevelMaxPool
  return out;
}

}  // namespace rv::models::det
