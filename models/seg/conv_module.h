// conv_module.h: ConvModule, mmcv's conv -> norm -> activation block as the UperNet heads use it.
//
//   x (B, C, H, W) -> conv (no bias: the BatchNorm's shift replaces it) -> bn -> ReLU -> (B, O, Ho, Wo)
//
// mmcv builds it with bias="auto", which drops the conv bias when a norm follows, and names the
// norm "bn" for BN / SyncBN, so its state dict is `conv.weight, bn.weight, bn.bias,
// bn.running_mean, bn.running_var, bn.num_batches_tracked` as in mmseg's checkpoints.
// SyncBN (statistics over every data-parallel rank): nn::convert_sync_batchnorm swaps `bn` for an
// nn::SyncBatchNorm after construction (the seg trainer does, model.sync_bn); child_replaced
// re-points the `bn` member so that forward uses it.
#pragma once
#include <memory>

#include "engine/nn/layers.h"

namespace rv::models::seg {

class ConvModule : public nn::UnaryModule {
 public:
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;

  // kernel k x k with padding (k - 1) / 2, so H and W are kept (UperNet uses k = 1 and 3).
  ConvModule(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& gen);
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> relu(bn(conv(x)))

 protected:
  void child_replaced(const std::string& name, const std::shared_ptr<nn::Module>& now) override;
};

}  // namespace rv::models::seg
