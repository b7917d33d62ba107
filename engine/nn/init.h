// init.h: in-place weight initialisers for parameters (torch.nn.init and timm's trunc_normal_).
//
// Layers call these from their constructors (PyTorch's default init) and models call them again
// in their own init pass (timm's ViT: trunc_normal_(.02) for Linear weights, zeros for biases).
// Each writes into the tensor it is given, under NoGradGuard, so the handle a layer keeps and the
// handle in the module registry (the same tensor) both see the new values; the tensor may be a
// parameter that requires grad. Random values come from a Philox Generator: the same (seed,
// stream, offset) gives the same weights on any machine and thread count. Elements are filled in
// row-major order of the shape, and each call advances the generator by the tensor's element count
// (rounded up to a Philox block of 4), so a model's init is fixed by its seed and its layer order.
// Draws are made in f64 for f64 tensors and in f32 otherwise (bf16 / f16 tensors are rounded).
#pragma once
#include <utility>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::nn::init {

// While a SkipInitGuard lives (on this thread), every initialiser below only checks its
// arguments and leaves the tensor as it is, without drawing from the generator: PyTorch's
// skip_init / meta-device construction. Use it to build a model whose weights are loaded right
// after (a checkpoint, a fixture), or to count a large model's parameters: untouched `empty`
// storage costs no time and, until written, no physical memory. The contents are then
// unspecified, so never train or run a model built this way before loading its weights.
class SkipInitGuard {
 public:
  SkipInitGuard();
  ~SkipInitGuard();
  SkipInitGuard(const SkipInitGuard&) = delete;
  SkipInitGuard& operator=(const SkipInitGuard&) = delete;

 private:
  bool previous_;
};
bool init_skipped();  // whether a SkipInitGuard is active on this thread

// PyTorch's _calculate_fan_in_and_fan_out for a weight of shape (out, in, *kernel):
// fan_in = in * prod(kernel), fan_out = out * prod(kernel). Needs at least 2 dims.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape);

Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);

// U[lo, hi).
Tensor& uniform_(Tensor& t, Generator& gen, double lo = 0.0, double hi = 1.0);
// N(mean, std^2).
Tensor& normal_(Tensor& t, Generator& gen, double mean = 0.0, double std = 1.0);
// timm's trunc_normal_: N(mean, std^2) restricted to [a, b]. Note that a and b are absolute
// bounds, not multiples of std (as in timm), so the ViT init trunc_normal_(w, .02) with the
// default [-2, 2] is in effect an untruncated N(0, .02^2).
Tensor& trunc_normal_(Tensor& t, Generator& gen, double std = 0.02, double mean = 0.0, double a = -2.0,
                      double b = 2.0);

// kaiming_uniform_(mode="fan_in", nonlinearity="leaky_relu"): U(-bound, bound) with
// bound = sqrt(6 / ((1 + a^2) fan_in)). With a = sqrt(5), PyTorch's default for Linear and Conv2d,
// bound = 1 / sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a = 0.0);
// xavier_uniform_: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);

}  // namespace rv::nn::init
