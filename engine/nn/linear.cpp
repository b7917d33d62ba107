// linear.cpp: nn::Linear — registration, PyTorch's default init, forward through rv::linear.
#include "engine/nn/linear.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/nn/init.h"
#include "engine/ops/matmul.h"

namespace rv::nn {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool has_bias)
    : in_(in_features), out_(out_features) {
  if (in_features < 0 || out_features < 0)
    throw std::invalid_argument("Linear: expected non-negative sizes, got in_features " + std::to_string(in_features) +
                                ", out_features " + std::to_string(out_features));
  weight = register_parameter("weight", empty({out_, in_}));
  init::kaiming_uniform_(weight, gen, std::sqrt(5.0));  // = U(-1/sqrt(in), 1/sqrt(in))
  if (has_bias) {
    bias = register_parameter("bias", empty({out_}));
    const double bound = in_ > 0 ? 1.0 / std::sqrt(double(in_)) : 0.0;
    init::uniform_(bias, gen, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() == 0 || x.size(-1) != in_)
    throw std::invalid_argument("Linear(" + std::to_string(in_) + ", " + std::to_string(out_) +
                                "): expected an input whose last dim is " + std::to_string(in_) + ", got shape " +
                                shape_str(x.shape()));
  return linear(x, weight, bias);
}

}  // namespace rv::nn
