// conv_module.cpp: ConvModule (conv without bias, BatchNorm2d, ReLU).
#include "models/seg/conv_module.h"

#include <stdexcept>

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

void ConvModule::child_replaced(const std::string& name, const std::shared_ptr<nn::Module>& now) {
  auto as = [&]<class M>(std::shared_ptr<M>& member) {
    auto typed = std::dynamic_pointer_cast<M>(now);
    if (!typed)
      throw std::invalid_argument("ConvModule::replace_child(\"" + name + "\"): a " + now->type_name() +
                                  " cannot take that place");
    member = std::move(typed);
  };
  if (name == "conv") as(conv);
  if (name == "bn") as(bn);
}

}  // namespace rv::models::seg
