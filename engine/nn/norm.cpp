// norm.cpp: LayerNorm, BatchNorm2d and GroupNorm; the arithmetic is in engine/ops/layernorm.h and
// engine/ops/norm.h, so this file only holds the state and the mode logic.
#include "engine/nn/norm.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/norm.h"

namespace rv::nn {

// ---- LayerNorm ----------------------------------------------------------------------------------

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, bool has_bias)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  if (shape_.empty()) throw std::invalid_argument("LayerNorm: normalized_shape is empty; expected e.g. {C}");
  for (int64_t s : shape_)
    if (s <= 0) throw std::invalid_argument("LayerNorm: expected positive sizes in normalized_shape, got " + shape_str(shape_));
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(shape_));
    if (has_bias) bias = register_parameter("bias", zeros(shape_));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, shape_, weight, bias, eps_); }

// ---- BatchNorm2d --------------------------------------------------------------------------------

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
                         bool track_running_stats)
    : C_(num_features), eps_(eps), momentum_(momentum), track_(track_running_stats) {
  if (num_features <= 0)
    throw std::invalid_argument("BatchNorm2d: expected num_features > 0, got " + std::to_string(num_features));
  if (momentum && !(*momentum >= 0.0 && *momentum <= 1.0))
    throw std::invalid_argument("BatchNorm2d: expected momentum in [0, 1] or none, got " + std::to_string(*momentum));
  if (affine) {
    weight = register_parameter("weight", ones({C_}));
    bias = register_parameter("bias", zeros({C_}));
  }
  if (track_) {
    running_mean = register_buffer("running_mean", zeros({C_}));
    running_var = register_buffer("running_var", ones({C_}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
  }
}

BatchNorm2d::BatchNorm2d(const BatchNorm2d& other, ShareTensors)
    : C_(other.C_), eps_(other.eps_), momentum_(other.momentum_), track_(other.track_) {
  if (other.weight.defined()) {
    weight = register_parameter("weight", other.weight, other.weight.requires_grad());
    bias = register_parameter("bias", other.bias, other.bias.requires_grad());
  }
  if (track_) {
    running_mean = register_buffer("running_mean", other.running_mean);
    running_var = register_buffer("running_var", other.running_var);
    num_batches_tracked = register_buffer("num_batches_tracked", other.num_batches_tracked);
  }
  train(other.is_training());
}

void BatchNorm2d::check_input(const Tensor& x) const {
  const std::string name = type_name();
  if (x.dim() != 4)
    throw std::invalid_argument(name + ": expected a 4-D input (B, C, H, W), got shape " + shape_str(x.shape()));
  if (x.size(1) != C_)
    throw std::invalid_argument(name + "(" + std::to_string(C_) + "): expected " + std::to_string(C_) +
                                " channels in dim 1, got shape " + shape_str(x.shape()));
}

double BatchNorm2d::step_momentum() {
  double momentum = momentum_.value_or(0.0);
  if (is_training() && track_) {
    // Count the step before using it, so the first batch with momentum = none gets factor 1/1
    // (the running stats become that batch's stats), the second 1/2, and so on.
    int64_t steps;
    {
      autograd::NoGradGuard no_grad;
      steps = int64_t(num_batches_tracked.item()) + 1;
      num_batches_tracked.fill_(double(steps));
    }
    if (!momentum_) momentum = 1.0 / double(steps);
  }
  return momentum;
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  check_input(x);
  const double momentum = step_momentum();
  // Batch statistics whenever training, and also in eval when there are no running stats.
  const bool use_batch_stats = is_training() || !track_;
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum, eps_);
}

// ---- GroupNorm ----------------------------------------------------------------------------------

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : groups_(num_groups), C_(num_channels), eps_(eps) {
  if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups != 0)
    throw std::invalid_argument("GroupNorm: expected num_channels divisible by num_groups (both positive), got " +
                                std::to_string(num_groups) + " groups for " + std::to_string(num_channels) + " channels");
  if (affine) {
    weight = register_parameter("weight", ones({C_}));
    bias = register_parameter("bias", zeros({C_}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  if (x.dim() < 2 || x.size(1) != C_)
    throw std::invalid_argument("GroupNorm(" + std::to_string(groups_) + ", " + std::to_string(C_) +
                                "): expected an input (B, " + std::to_string(C_) + ", *), got shape " +
                                shape_str(x.shape()));
  return group_norm(x, groups_, weight, bias, eps_);
}

}  // namespace rv::nn
