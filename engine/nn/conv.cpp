// conv.cpp: nn::Conv2d and nn::ConvTranspose2d: argument checks, PyTorch's default init, forward
// through rv::conv2d / rv::conv_transpose2d.
#include "engine/nn/conv.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/nn/init.h"

namespace rv::nn {

namespace {

// Built with append: GCC 12's -Wrestrict misfires on `"(" + std::to_string(...)`.
std::string pair_str(const Pair& p) {
  std::string s = "(";
  s.append(std::to_string(p[0])).append(", ").append(std::to_string(p[1])).append(")");
  return s;
}

// PyTorch's _ConvNd.reset_parameters, shared by Conv2d and ConvTranspose2d: the weight
// kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then the bias (if any)
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in that order.
void reset_conv_parameters(Tensor& weight, Tensor& bias, Generator& gen) {
  init::kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (!bias.defined()) return;
  const double bound = 1.0 / std::sqrt(double(init::fan_in_and_fan_out(weight.shape()).first));
  init::uniform_(bias, gen, -bound, bound);
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen, const Conv2dOptions& options)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), opt_(options) {
  const std::string where = "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", " + pair_str(kernel_) + ")";
  if (in_ <= 0 || out_ <= 0) throw std::invalid_argument(where + ": expected positive channel counts");
  if (opt_.groups <= 0 || in_ % opt_.groups != 0 || out_ % opt_.groups != 0)
    throw std::invalid_argument(where + ": groups = " + std::to_string(opt_.groups) +
                                " must be positive and divide both in_channels and out_channels");
  for (int i = 0; i < 2; ++i) {
    if (kernel_[i] <= 0) throw std::invalid_argument(where + ": expected a positive kernel_size");
    if (opt_.stride[i] <= 0) throw std::invalid_argument(where + ": expected a positive stride, got " + pair_str(opt_.stride));
    if (opt_.padding[i] < 0) throw std::invalid_argument(where + ": expected padding >= 0, got " + pair_str(opt_.padding));
    if (opt_.dilation[i] <= 0)
      throw std::invalid_argument(where + ": expected a positive dilation, got " + pair_str(opt_.dilation));
  }
  weight = register_parameter("weight", empty({out_, in_ / opt_.groups, kernel_[0], kernel_[1]}));
  if (opt_.bias) bias = register_parameter("bias", empty({out_}));
  reset_conv_parameters(weight, bias, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_)
    throw std::invalid_argument("Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
                                "): expected an input (B, " + std::to_string(in_) + ", H, W), got shape " +
                                shape_str(x.shape()));
  return conv2d(x, weight, bias, opt_.stride, opt_.padding, opt_.dilation, opt_.groups);
}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                                 const ConvTranspose2dOptions& options)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), opt_(options) {
  const std::string where =
      "ConvTranspose2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", " + pair_str(kernel_) + ")";
  if (in_ <= 0 || out_ <= 0) throw std::invalid_argument(where + ": expected positive channel counts");
  if (opt_.groups <= 0 || in_ % opt_.groups != 0 || out_ % opt_.groups != 0)
    throw std::invalid_argument(where + ": groups = " + std::to_string(opt_.groups) +
                                " must be positive and divide both in_channels and out_channels");
  for (int i = 0; i < 2; ++i) {
    if (kernel_[i] <= 0) throw std::invalid_argument(where + ": expected a positive kernel_size");
    if (opt_.stride[i] <= 0) throw std::invalid_argument(where + ": expected a positive stride, got " + pair_str(opt_.stride));
    if (opt_.padding[i] < 0) throw std::invalid_argument(where + ": expected padding >= 0, got " + pair_str(opt_.padding));
    if (opt_.dilation[i] <= 0)
      throw std::invalid_argument(where + ": expected a positive dilation, got " + pair_str(opt_.dilation));
    if (opt_.output_padding[i] < 0 || (opt_.output_padding[i] >= opt_.stride[i] && opt_.output_padding[i] >= opt_.dilation[i]))
      throw std::invalid_argument(where + ": expected 0 <= output_padding < stride or < dilation, got " +
                                  pair_str(opt_.output_padding));
  }
  weight = register_parameter("weight", empty({in_, out_ / opt_.groups, kernel_[0], kernel_[1]}));
  if (opt_.bias) bias = register_parameter("bias", empty({out_}));
  // The same init as Conv2d; fan_in is read from the weight's dim 1, which for a transposed
  // conv is O/groups (as PyTorch does).
  reset_conv_parameters(weight, bias, gen);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_)
    throw std::invalid_argument("ConvTranspose2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
                                "): expected an input (B, " + std::to_string(in_) + ", H, W), got shape " +
                                shape_str(x.shape()));
  return conv_transpose2d(x, weight, bias, opt_.stride, opt_.padding, opt_.output_padding, opt_.dilation, opt_.groups);
}

}  // namespace rv::nn
