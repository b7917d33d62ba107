// det_conv.h: the small convolution building blocks of the detection necks, with the state-dict
// names of the libraries whose checkpoints they load.
//
//   LayerNorm2d    detectron2's channels-first LayerNorm ("LN" in ViTDet): each pixel's C values
//                  normalised, eps 1e-6; weight, bias (C). Computed as a LayerNorm over the last
//                  dim of the (B, H, W, C) view, the same formula.
//   ConvWithNorm   detectron2's Conv2d(norm=...): the convolution's own weight (and bias), then
//                  a child `norm`; names `weight`, `norm.weight`, `norm.bias`.
//   ConvNormAct    detrex's ConvNormAct: children `conv` and `norm` (and an activation, none in
//                  the ChannelMapper); names `conv.weight`, `conv.bias`, `norm.weight`, ...
#pragma once
#include <memory>

#include "engine/nn/conv.h"
#include "engine/nn/norm.h"

namespace rv::models::det {

class LayerNorm2d : public nn::LayerNorm {
 public:
  explicit LayerNorm2d(int64_t C, double eps = 1e-6) : nn::LayerNorm(C, eps) {}
  Tensor forward(const Tensor& x) override;  // (B, C, H, W) -> (B, C, H, W)
  std::string type_name() const override { return "LayerNorm2d"; }
};

class ConvWithNorm : public nn::Conv2d {
 public:
  std::shared_ptr<nn::UnaryModule> norm;  // may be null: no norm

  ConvWithNorm(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
               const nn::Conv2dOptions& options, std::shared_ptr<nn::UnaryModule> norm_layer);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d+norm"; }
};

class ConvNormAct : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::UnaryModule> norm;  // may be null

  ConvNormAct(std::shared_ptr<nn::Conv2d> conv_layer, std::shared_ptr<nn::UnaryModule> norm_layer);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvNormAct"; }
};

}  // namespace rv::models::det
