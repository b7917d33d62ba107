// rng.cpp: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011) and the random tensor factories built on it.
#include "engine/rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "engine/cpu/dispatch.h"
#include "engine/cpu/parallel.h"

namespace rv {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;   // round multipliers
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;   // key schedule (golden ratio, sqrt 3)
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(M0) * c[0];
    uint64_t p1 = uint64_t(M1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
    k[0] += W0;
    k[1] += W1;
  }
  return c;
}

void philox_words(uint64_t seed, uint64_t stream, uint64_t first, int64_t count, uint32_t* out) {
  // Blocks are computed kBatch at a time in structure-of-arrays form: one round for all the
  // blocks of the batch, then the next round, so the inner loop is the same arithmetic on
  // independent lanes (the key schedule is shared). Same rounds as philox4x32_10.
  constexpr int kBatch = 32;
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  // Word indices are taken mod 2^64 as in philox_word, so block indices run mod 2^62.
  constexpr uint64_t kBlockMask = (uint64_t(1) << 62) - 1;
  uint64_t w = first;  // the next word to produce
  while (count > 0) {
    const uint64_t block = w >> 2;
    const int skip = int(w & 3);  // words of the first block before `first`
    const int nb = int(std::min<int64_t>(kBatch, (skip + count + 3) / 4));
    uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
    for (int j = 0; j < kBatch; ++j) {  // lanes past nb are computed and ignored
      const uint64_t b = (block + uint64_t(j)) & kBlockMask;
      c0[j] = uint32_t(b), c1[j] = uint32_t(b >> 32), c2[j] = uint32_t(stream), c3[j] = uint32_t(stream >> 32);
    }
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
#pragma omp simd
      for (int j = 0; j < kBatch; ++j) {
        const uint64_t p0 = uint64_t(M0) * c0[j], p1 = uint64_t(M1) * c2[j];
        const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[j] ^ k0, n2 = uint32_t(p0 >> 32) ^ c3[j] ^ k1;
        c0[j] = n0, c1[j] = uint32_t(p1), c2[j] = n2, c3[j] = uint32_t(p0);
      }
      k0 += W0;
      k1 += W1;
    }
    // Interleave back to stream order (block j's words at 4j .. 4j+3) and copy out the words
    // from `skip` in the first block, at most `count` of them.
    uint32_t words[4 * kBatch];
    for (int j = 0; j < nb; ++j)
      words[4 * j] = c0[j], words[4 * j + 1] = c1[j], words[4 * j + 2] = c2[j], words[4 * j + 3] = c3[j];
    const int64_t take = std::min<int64_t>(int64_t(nb) * 4 - skip, count);
    std::memcpy(out, words + skip, size_t(take) * sizeof(uint32_t));
    out += take;
    count -= take;
    w += uint64_t(take);
  }
}

namespace {

// Fills a fresh tensor with value(words) for each element i, computed in double, where
// `words` points at the K stream words off + K*i .. off + K*i + K - 1 (K = 1 for the uniform
// family, 2 for Box-Muller). Elements are processed in tiles of kTile: the tile's words are
// generated together, so each Philox block is computed once and all four of its words are
// used. Tiles start at multiples of kTile elements (K*kTile words, a whole number of blocks),
// so with a block-aligned `off` (what Generator::reserve returns) no block is computed twice;
// an unaligned offset (set_offset) costs one extra block per tile. The values do not depend on
// the tiling or the thread count: element i always gets the same words.
template <int K, class F>
Tensor fill_from_words(const Shape& shape, DType dtype, uint64_t seed, uint64_t stream, uint64_t off, F&& value) {
  constexpr int64_t kTile = 256;
  static_assert((K * kTile) % 4 == 0, "a tile must span whole Philox blocks");
  Tensor t = empty(shape, dtype);
  const int64_t n = t.numel();
  const int64_t tiles = (n + kTile - 1) / kTile;
  cpu::dispatch_storage(dtype, "random", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    cpu::parallel_for(tiles, 16, [&](int64_t t0, int64_t t1) {
      uint32_t words[K * kTile];
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t b = tile * kTile, e = std::min(n, b + kTile);
        philox_words(seed, stream, off + uint64_t(K * b), K * (e - b), words);
        for (int64_t i = b; i < e; ++i) p[i] = cpu::scalar_cast<T>(value(words + K * (i - b)));
      }
    });
  });
  return t;
}

// Inverse of the standard normal CDF via erfinv (Giles' single-precision-free double form,
// refined with two Newton steps on erf, which is exact to double rounding).
double erfinv(double y) {
  if (y <= -1) return -INFINITY;
  if (y >= 1) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    x = 2.81022636e-08;
    x = 3.43273939e-07 + x * w; x = -3.5233877e-06 + x * w; x = -4.39150654e-06 + x * w;
    x = 0.00021858087 + x * w; x = -0.00125372503 + x * w; x = -0.00417768164 + x * w;
    x = 0.246640727 + x * w; x = 1.50140941 + x * w;
  } else {
    w = std::sqrt(w) - 3.0;
    x = -0.000200214257;
    x = 0.000100950558 + x * w; x = 0.00134934322 + x * w; x = -0.00367342844 + x * w;
    x = 0.00573950773 + x * w; x = -0.0076224613 + x * w; x = 0.00943887047 + x * w;
    x = 1.00167406 + x * w; x = 2.83297682 + x * w;
  }
  x *= y;
  for (int i = 0; i < 2; ++i) {  // Newton on erf(x) - y
    double err = std::erf(x) - y;
    x -= err / (2.0 / std::sqrt(M_PI) * std::exp(-x * x));
  }
  return x;
}

}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype) {
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_from_words<1>(shape, dtype, seed, stream, off,
                            [](const uint32_t* w) { return double(word_to_uniform(w[0])); });
}

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype) {
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_from_words<1>(shape, dtype, seed, stream, off,
                            [=](const uint32_t* w) { return lo + (hi - lo) * double(word_to_uniform(w[0])); });
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  // Box-Muller on words (2i, 2i+1): element i uses its own pair, so any element is computable
  // alone (the cosine branch only; the sine of the same pair is not used).
  const uint64_t n = uint64_t(shape_numel(shape));
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(2 * n);
  return fill_from_words<2>(shape, dtype, seed, stream, off, [](const uint32_t* w) {
    double u1 = (double(w[0]) + 1.0) / 4294967296.0;  // (0, 1]
    double u2 = double(w[1]) / 4294967296.0;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor trunc_normal(const Shape& shape, double mean, double std, double a, double b, Generator& gen, DType dtype) {
  if (!(a < b)) throw std::invalid_argument("trunc_normal: expected a < b");
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_from_words<1>(shape, dtype, seed, stream, off, [=](const uint32_t* w) {
    double u = lo + (hi - lo) * double(word_to_uniform(w[0]));
    double x = mean + std * std::sqrt(2.0) * erfinv(2.0 * u - 1.0);
    return std::clamp(x, a, b);
  });
}

Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype) {
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_from_words<1>(shape, dtype, seed, stream, off,
                            [=](const uint32_t* w) { return double(word_to_uniform(w[0])) < p ? 1.0 : 0.0; });
}

}  // namespace rv
