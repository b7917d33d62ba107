// rng.h: Philox 4x32-10, a counter-based random number generator.
//
// A counter-based generator is a pure function random(key, counter): no hidden state, so
// element i of a dropout mask can be computed by any thread (or a CUDA kernel) on its own,
// and the same (seed, stream, offset) gives the same numbers on every device and thread
// count. The key is the 64-bit seed; the counter is (offset: 64 bits, stream: 64 bits).
// Each call yields four 32-bit numbers (a block), so word i of a stream is word i % 4 of the
// block at counter offset i / 4. The tensor factories below compute each block once and use
// all four of its words (philox_words); philox_word is the one-word form, for reference loops
// and code that needs a single element.
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace rv {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// The i-th 32-bit random word of stream `stream` under `seed`.
inline uint32_t philox_word(uint64_t seed, uint64_t stream, uint64_t i) {
  uint64_t block = i >> 2;
  auto r = philox4x32_10({uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)},
                         {uint32_t(seed), uint32_t(seed >> 32)});
  return r[i & 3];
}

// Words first .. first + count - 1 of stream `stream` under `seed` into out[0 .. count): the
// same values as philox_word(seed, stream, first + j), with each block computed once (and
// several blocks side by side, which the compiler vectorises).
void philox_words(uint64_t seed, uint64_t stream, uint64_t first, int64_t count, uint32_t* out);

// A word's top 24 bits as a uniform in [0, 1) (exactly representable in float).
inline float word_to_uniform(uint32_t w) { return float(w >> 8) * (1.0f / 16777216.0f); }

// Uniform in [0, 1) from the i-th word.
inline float philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return word_to_uniform(philox_word(seed, stream, i));
}

// A seeded source of random tensors. Each draw consumes a fresh range of counter offsets,
// so successive draws are independent and the whole sequence is fixed by (seed, stream).
class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}
  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t off) { offset_ = off; }
  // Reserves n words and returns the first offset (rounded up to a whole Philox block).
  uint64_t reserve(uint64_t n) {
    uint64_t start = offset_;
    offset_ += (n + 3) & ~uint64_t(3);
    return start;
  }

 private:
  uint64_t seed_, stream_, offset_ = 0;
};

Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32);              // U[0,1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32);             // N(0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::f32);
// Normal(mean, std) truncated to [a, b] by inverse-CDF sampling (as timm's trunc_normal_).
Tensor trunc_normal(const Shape& shape, double mean, double std, double a, double b, Generator& gen,
                    DType dtype = DType::f32);
// Bernoulli(p) as 0/1 in `dtype`.
Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype = DType::f32);

}  // namespace rv
