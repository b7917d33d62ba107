// augment_random.h: RandomDraws, the scalar random numbers augmentations draw from a Generator.
//
// Every augmentation is split in two: `*_params(..., RandomDraws&)` samples the parameters (the
// only place randomness enters) and `*_apply(image, params)` is a deterministic function of
// them. Tests feed the same parameters to torchvision / timm and compare pixels; the loader's
// determinism contract (data/loader.h) holds because the draws come from the per-sample
// Generator only. The draws are random_draws.h's (one fresh Philox block each), so the
// sequence is fixed by (seed, stream) and the order of the draws; this class only bundles them
// with the generator for the uint8 augmentations' signatures.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"

namespace rv::data {

class RandomDraws {
 public:
  explicit RandomDraws(Generator& gen) : gen_(gen) {}
  double uniform();                                                        // [0, 1), 53 bits
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }  // [lo, hi)
  int64_t randint(int64_t lo, int64_t hi);                                 // [lo, hi], both included
  double normal(double mean = 0.0, double stddev = 1.0);                   // Box-Muller
  bool bernoulli(double p) { return uniform() < p; }
  std::vector<int> permutation(int n);                                     // Fisher-Yates
  Generator& generator() { return gen_; }

 private:
  Generator& gen_;
};

}  // namespace rv::data
