// channel_mapper.cpp: ChannelMapper (channel_mapper.h).
#include "models/det/channel_mapper.h"

#include <stdexcept>
#include <string>

#include "engine/nn/conv.h"
#include "engine/nn/norm.h"

namespace rv::models::det {

ChannelMapper::ChannelMapper(const ChannelMapperOptions& options, Generator& gen) : opt_(options) {
  const int64_t L = int64_t(opt_.in_channels.size());
  if (L == 0) throw std::invalid_argument("ChannelMapper: in_channels is empty");
  if (opt_.num_outs < L)
    throw std::invalid_argument("ChannelMapper: num_outs " + std::to_string(opt_.num_outs) + " is below the " +
                                std::to_string(L) + " input levels");
  if (opt_.groups <= 0 || opt_.out_channels % opt_.groups != 0)
    throw std::invalid_argument("ChannelMapper: GroupNorm groups " + std::to_string(opt_.groups) +
                                " must divide out_channels " + std::to_string(opt_.out_channels));
  const int64_t out = opt_.out_channels;
  convs = register_module("convs", std::make_shared<nn::ModuleList>());
  for (int64_t c : opt_.in_channels)
    convs->push_back(std::make_shared<ConvNormAct>(std::make_shared<nn::Conv2d>(c, out, Pair{1, 1}, gen),
                                                   std::make_shared<nn::GroupNorm>(opt_.groups, out)));
  extra_convs = register_module("extra_convs", std::make_shared<nn::ModuleList>());
  for (int64_t j = L; j < opt_.num_outs; ++j) {
    const int64_t in = j == L ? opt_.in_channels.back() : out;
    extra_convs->push_back(std::make_shared<ConvNormAct>(
        std::make_shared<nn::Conv2d>(in, out, Pair{3, 3}, gen, nn::Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}}),
        std::make_shared<nn::GroupNorm>(opt_.groups, out)));
  }
}

std::vector<Tensor> ChannelMapper::forward(const std::vector<Tensor>& inputs) {
  if (inputs.size() != opt_.in_channels.size())
    throw std::invalid_argument("ChannelMapper: expected " + std::to_string(opt_.in_channels.size()) +
                                " feature levels, got " + std::to_string(inputs.size()));
  std::vector<Tensor> out;
  for (size_t i = 0; i < inputs.size(); ++i) out.push_back(convs->get<ConvNormAct>(i)->forward(inputs[i]));
  Tensor last = inputs.back();
  for (size_t j = 0; j < extra_convs->size(); ++j) {
    last = extra_convs->get<ConvNormAct>(j)->forward(last);
    out.push_back(last);
  }
  return out;
}

}  // namespace rv::models::det
