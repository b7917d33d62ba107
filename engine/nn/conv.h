// conv.h: nn::Conv2d and nn::ConvTranspose2d over NCHW images (PyTorch's nn.Conv2d, padding_mode
// "zeros", and nn.ConvTranspose2d).
//
//   Conv2d           weight (O, C/groups, KH, KW), bias (O) or none;  x (B, C, H, W) -> (B, O, Ho, Wo)
//   ConvTranspose2d  weight (C, O/groups, KH, KW), bias (O) or none;  x (B, C, H, W) -> (B, O, Ho, Wo)
//
// Default init as PyTorch's: kaiming_uniform_(a = sqrt 5) for the weight, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C/groups * KH * KW, and the same bound for the
// bias; drawn from `gen`, weight first. The options take C++20 designated initialisers:
//
//   Conv2d proj(3, 768, {16, 16}, gen, {.stride = {16, 16}});            // ViT patch embedding
//   Conv2d conv(64, 64, {3, 3}, gen, {.padding = {1, 1}, .bias = false}); // before a BatchNorm2d
#pragma once
#include "engine/nn/containers.h"
#include "engine/ops/conv.h"
#include "engine/rng.h"

namespace rv::nn {

struct Conv2dOptions {
  Pair stride = {1, 1};    // (height, width), as every pair here
  Pair padding = {0, 0};   // zeros on each side
  Pair dilation = {1, 1};
  int64_t groups = 1;      // must divide both channel counts
  bool bias = true;
};

class Conv2d : public UnaryModule {
 public:
  Tensor weight;  // (O, C/groups, KH, KW)
  Tensor bias;    // (O), undefined when options.bias = false

  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen, const Conv2dOptions& options = {});
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> (B, O, Ho, Wo)

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  const Pair& kernel_size() const { return kernel_; }
  const Conv2dOptions& options() const { return opt_; }

 private:
  int64_t in_, out_;
  Pair kernel_;
  Conv2dOptions opt_;
};

// nn.ConvTranspose2d, e.g. the 2x upsampling of the ViT segmentation neck:
//   ConvTranspose2d up(768, 768, {2, 2}, gen, {.stride = {2, 2}});   // (B, 768, H, W) -> (B, 768, 2H, 2W)
// Init as PyTorch's: the same kaiming_uniform_(a = sqrt 5) rule as Conv2d, where PyTorch's fan_in
// of the (C, O/groups, KH, KW) weight is O/groups * KH * KW (its dim 1), bias with the same bound.
struct ConvTranspose2dOptions {
  Pair stride = {1, 1};
  Pair padding = {0, 0};
  Pair output_padding = {0, 0};  // extra rows / columns at the bottom / right; < stride or < dilation
  Pair dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class ConvTranspose2d : public UnaryModule {
 public:
  Tensor weight;  // (C, O/groups, KH, KW)
  Tensor bias;    // (O), undefined when options.bias = false

  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                  const ConvTranspose2dOptions& options = {});
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> (B, O, Ho, Wo)

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  const ConvTranspose2dOptions& options() const { return opt_; }

 private:
  int64_t in_, out_;
  Pair kernel_;
  ConvTranspose2dOptions opt_;
};

}  // namespace rv::nn
