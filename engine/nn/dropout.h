// dropout.h: the random regularisers as modules: Dropout, Dropout2d (whole channels) and DropPath
// (stochastic depth), and
// set_generator, which hands one random stream to every such module of a model.
//
// Where the random numbers come from. Each of these modules holds a std::shared_ptr<Generator>;
// a model (or the trainer) creates ONE Generator for its dropout noise and gives it to all of
// them, usually by calling set_generator(model, gen) once after building the model. Every
// forward call reserves a fresh range of Philox offsets from that shared generator, so:
//   - a run is reproducible: the masks depend only on (seed, stream) and the order of the
//     dropout calls, which a model's forward fixes;
//   - resuming is exact if the checkpoint stores gen->offset() and restores it (set_offset);
//   - data-parallel ranks draw independent masks by giving each rank its own stream
//     (Generator(seed, rank)) while keeping the same seed.
// The alternative, a seed and offset passed into every forward, would thread an argument through
// every block's signature for the same result. The generator used for dropout should not be the
// one used for weight init, so that changing a dropout rate does not change the weights.
//
// In eval mode, or with p = 0, both modules return their input unchanged and need no generator;
// training with p > 0 and no generator is an error that says how to provide one.
#pragma once
#include <memory>

#include "engine/nn/containers.h"
#include "engine/rng.h"

namespace rv::nn {

// A UnaryModule whose forward draws random numbers in training mode.
class StochasticModule : public UnaryModule {
 public:
  void set_generator(std::shared_ptr<Generator> gen) { gen_ = std::move(gen); }
  const std::shared_ptr<Generator>& generator() const { return gen_; }

 protected:
  explicit StochasticModule(std::shared_ptr<Generator> gen) : gen_(std::move(gen)) {}
  // The generator, or an error naming `who` and how to give it one.
  Generator& require_generator(const char* who) const;

 private:
  std::shared_ptr<Generator> gen_;
};

// nn.Dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p).
class Dropout : public StochasticModule {
 public:
  explicit Dropout(double p = 0.5, std::shared_ptr<Generator> gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
};

// timm's DropPath: in training, drops each sample (index of dim 0) of a residual branch with
// probability p and scales the kept ones by 1/(1-p). x (B, ...), e.g. (B, N, C).
class DropPath : public StochasticModule {
 public:
  explicit DropPath(double p = 0.0, std::shared_ptr<Generator> gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
};

// nn.Dropout2d: in training, zeroes each whole channel (B, C) of x (B, C, H, W) with probability p
// and scales the kept channels by 1/(1-p): one draw per (sample, channel), shared by its H*W
// positions (mmseg's decode heads put one before their classifier). The draw is element (b, c)
// of rv::dropout on a (B, C, 1, 1) tensor of ones, so it has that op's reproducibility.
class Dropout2d : public StochasticModule {
 public:
  explicit Dropout2d(double p = 0.5, std::shared_ptr<Generator> gen = nullptr);
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> same shape
  double p() const { return p_; }

 private:
  double p_;
};

// Gives `gen` to every StochasticModule in root's tree (root included); returns how many.
int64_t set_generator(Module& root, const std::shared_ptr<Generator>& gen);

}  // namespace rv::nn
