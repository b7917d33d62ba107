// det_conv.cpp: LayerNorm2d, ConvWithNorm and ConvNormAct (det_conv.h).
#include "models/det/det_conv.h"

#include <stdexcept>

namespace rv::models::det {

Tensor LayerNorm2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument("LayerNorm2d: expected (B, C, H, W), got " + shape_str(x.shape()));
  return nn::LayerNorm::forward(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
}

ConvWithNorm::ConvWithNorm(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                           const nn::Conv2dOptions& options, std::shared_ptr<nn::UnaryModule> norm_layer)
    : nn::Conv2d(in_channels, out_channels, kernel_size, gen, options) {
  if (norm_layer) norm = register_module("norm", std::move(norm_layer));
}

Tensor ConvWithNorm::forward(const Tensor& x) {
  Tensor y = nn::Conv2d::forward(x);
  return norm ? norm->forward(y) : y;
}

ConvNormAct::ConvNormAct(std::shared_ptr<nn::Conv2d> conv_layer, std::shared_ptr<nn::UnaryModule> norm_layer) {
  conv = register_module("conv", std::move(conv_layer));
  if (norm_layer) norm = register_module("norm", std::move(norm_layer));
}

Tensor ConvNormAct::forward(const Tensor& x) {
  Tensor y = conv->forward(x);
  return norm ? norm->forward(y) : y;
}

}  // namespace rv::models::det
