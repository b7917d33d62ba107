// conv_module.cpp: ConvModule (conv without bias, BatchNorm2d, ReLU).
#include "models/seg/conv_module.h"

#include "engine/ops/activation.h"

namespace rv::models::seg {

ConvModule::ConvModule(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& gen) {
  const int64_t pad = (kernel - 1) / 2;  // keeps H and W for the odd kernels UperNet uses (1, 3)
  conv = register_module("conv", std::make_shared<nn::Conv2d>(in_channels, out_channels, Pair{kernel, kernel}, gen,
                                                              nn::Conv2dOptions{.padding = {pad, pad}, .bias = false}));
  // mmcv's BN defaults: eps 1e-5, momentum 0.1 (PyTorch's).
  bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(out_channels));
}

Tensor ConvModule::forward(const Tensor& x) { return relu(bn->forward(conv->forward(x))); }

}  // namespace rv::models::seg
