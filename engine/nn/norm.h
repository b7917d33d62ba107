// norm.h: the normalisation layers: LayerNorm, BatchNorm2d and GroupNorm (PyTorch's nn.*).
//
//   LayerNorm    x (..., *normalized_shape), e.g. (B, N, C) with {C}   weight, bias: normalized_shape
//   BatchNorm2d  x (B, C, H, W)                                         weight, bias, running stats: (C)
//   GroupNorm    x (B, C, *)                                            weight, bias: (C)
//
// Affine weights start at ones and biases at zeros, as in PyTorch, so none of them needs a
// Generator. State dict names and order are PyTorch's: `weight, bias` and, for BatchNorm2d,
// `weight, bias, running_mean, running_var, num_batches_tracked`.
#pragma once
#include <optional>

#include "engine/nn/containers.h"

namespace rv::nn {

class LayerNorm : public UnaryModule {
 public:
  Tensor weight;  // normalized_shape, ones; undefined without elementwise_affine
  Tensor bias;    // normalized_shape, zeros; undefined without elementwise_affine or without bias

  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
  explicit LayerNorm(int64_t C, double eps = 1e-5, bool elementwise_affine = true, bool bias = true)
      : LayerNorm(Shape{C}, eps, elementwise_affine, bias) {}
  Tensor forward(const Tensor& x) override;

  const Shape& normalized_shape() const { return shape_; }
  double eps() const { return eps_; }

 private:
  Shape shape_;
  double eps_;
};

// In training mode the batch's statistics normalise x and (with track_running_stats) update the
// running buffers in place; in eval mode the running statistics normalise x. Without
// track_running_stats there are no buffers and batch statistics are used in both modes (as
// PyTorch). momentum = std::nullopt gives the cumulative moving average: each training step
// uses momentum 1 / num_batches_tracked, so the running stats are the plain mean over all
// batches seen.
class BatchNorm2d : public UnaryModule {
 public:
  Tensor weight, bias;                // (C); ones / zeros, undefined without affine
  Tensor running_mean, running_var;   // (C); zeros / ones, undefined without track_running_stats
  Tensor num_batches_tracked;         // int64 scalar, training steps taken (a persistent buffer)

  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> (B, C, H, W)

  int64_t num_features() const { return C_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return weight.defined(); }
  bool track_running_stats() const { return track_; }

 protected:
  // A BatchNorm2d that takes over `other`'s tensors (the same handles, registered under the same
  // names), for SyncBatchNorm's conversion: an optimizer or state dict holding them stays valid.
  struct ShareTensors {};
  BatchNorm2d(const BatchNorm2d& other, ShareTensors);
  void check_input(const Tensor& x) const;  // (B, C, H, W) with C = num_features
  // In training with running stats: counts the step in num_batches_tracked; returns the momentum
  // this step uses (momentum = none: 1 / steps).
  double step_momentum();

 private:
  int64_t C_;
  double eps_;
  std::optional<double> momentum_;
  bool track_;
};

class GroupNorm : public UnaryModule {
 public:
  Tensor weight, bias;  // (C); ones / zeros, undefined without affine

  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;  // x (B, C, *) -> same shape

  int64_t num_groups() const { return groups_; }
  int64_t num_channels() const { return C_; }

 private:
  int64_t groups_, C_;
  double eps_;
};

}  // namespace rv::nn
