// random_draws.h: scalar random draws (uniform, integer, coin) from a Philox Generator, for
// augmentation parameters and samplers.
//
// Each draw takes the generator's next words (Generator::reserve rounds to a whole Philox
// block of 4 words, so a draw costs one block): the sequence of values is a fixed function of
// (seed, stream) and the order of the draws, which is what the loader's determinism rests on.
// Doubles use 53 random bits from two words, so uniform(lo, hi) can hit any double in range,
// as Python's random.uniform does (timm's augmentations draw from Python's `random`).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/rng.h"

namespace rv::data {

// Uniform in [0, 1) with 53 random bits.
inline double draw_uniform01(Generator& gen) {
  const uint64_t off = gen.reserve(2);
  const uint64_t hi = philox_word(gen.seed(), gen.stream(), off);
  const uint64_t lo = philox_word(gen.seed(), gen.stream(), off + 1);
  const uint64_t bits53 = ((hi << 32) | lo) >> 11;
  return double(bits53) * (1.0 / 9007199254740992.0);  // / 2^53
}

// Uniform in [lo, hi) (Python's random.uniform(lo, hi): lo + (hi - lo) * random()).
inline double draw_uniform(Generator& gen, double lo, double hi) { return lo + (hi - lo) * draw_uniform01(gen); }

// True with probability p.
inline bool draw_bernoulli(Generator& gen, double p) { return draw_uniform01(gen) < p; }

// An integer uniform in [lo, hi], both ends included (Python's random.randint), without bias:
// a 64-bit word is mapped by multiply-high (Lemire) and the rare words that would favour some
// values are redrawn.
inline int64_t draw_int(Generator& gen, int64_t lo, int64_t hi) {
  if (hi < lo)
    throw std::invalid_argument("draw_int: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  const uint64_t range = uint64_t(hi - lo) + 1;  // 0 means all 2^64 values
  for (;;) {
    const uint64_t off = gen.reserve(2);
    const uint64_t w = (uint64_t(philox_word(gen.seed(), gen.stream(), off)) << 32) |
                       philox_word(gen.seed(), gen.stream(), off + 1);
    if (range == 0) return lo + int64_t(w);
    const unsigned __int128 m = (unsigned __int128)w * range;
    const uint64_t low = uint64_t(m);
    if (low >= range || low >= (0 - range) % range) return lo + int64_t(uint64_t(m >> 64));
  }
}

}  // namespace rv::data
