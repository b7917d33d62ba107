// channel_mapper.h: detrex's ChannelMapper, the neck between a backbone's feature levels and the
// DINO transformer: every level to the same width by a 1x1 conv + GroupNorm, and extra levels
// (when more outputs than inputs are asked for) by a 3x3 stride-2 conv + GroupNorm on the last
// input level, each output one level coarser than the one before.
//
//   inputs x_i (B, C_i, h_i, w_i) -> convs.i: Conv 1x1 (bias) + GroupNorm(groups, out)
//   extra  e_0 = extra_convs.0(x_last) (Conv 3x3 s2 pad 1 + GroupNorm), e_j = extra_convs.j(e_{j-1})
//
// Followed: detrex's modeling/neck/channel_mapper.py (kernel_size 1, bias True, norm GroupNorm(32),
// no activation: the DINO configs). State dict as detrex's: convs.<i>.conv.{weight,bias},
// convs.<i>.norm.{weight,bias}, extra_convs.<j>.*. (With ViTDet's simple feature pyramid the
// fourth level comes from its max-pooled top block, so there are no extra convs; Swin has three
// stage outputs in the DINO configs and gets one.)
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/containers.h"
#include "engine/rng.h"
#include "models/det/det_conv.h"

namespace rv::models::det {

struct ChannelMapperOptions {
  std::vector<int64_t> in_channels;  // one per input level
  int64_t out_channels = 256;
  int64_t num_outs = 4;              // >= in_channels.size()
  int64_t groups = 32;               // GroupNorm groups; must divide out_channels
};

class ChannelMapper : public nn::Module {
 public:
  std::shared_ptr<nn::ModuleList> convs, extra_convs;

  ChannelMapper(const ChannelMapperOptions& options, Generator& gen);
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs);
  std::string type_name() const override { return "ChannelMapper"; }

 private:
  ChannelMapperOptions opt_;
};

}  // namespace rv::models::det
