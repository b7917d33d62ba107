// rng.cpp: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011) and the random tensor factories built on it.
#include "engine/rng.h"

#include <algorithm>
#include <cmath>

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

namespace {

// Fills a fresh tensor with value(i) for element i, computed in double.
template <class F>
Tensor fill_indexed(const Shape& shape, DType dtype, F&& value) {
  Tensor t = empty(shape, dtype);
  const int64_t n = t.numel();
  cpu::dispatch_storage(dtype, "random", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    cpu::parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = cpu::scalar_cast<T>(value(uint64_t(i)));
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
  return fill_indexed(shape, dtype, [=](uint64_t i) { return double(philox_uniform(seed, stream, off + i)); });
}

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype) {
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_indexed(shape, dtype, [=](uint64_t i) {
    return lo + (hi - lo) * double(philox_uniform(seed, stream, off + i));
  });
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  // Box-Muller on words (2i, 2i+1): element i uses its own pair, so any element is computable alone.
  const uint64_t n = uint64_t(shape_numel(shape));
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(2 * n);
  return fill_indexed(shape, dtype, [=](uint64_t i) {
    double u1 = (double(philox_word(seed, stream, off + 2 * i)) + 1.0) / 4294967296.0;  // (0, 1]
    double u2 = double(philox_word(seed, stream, off + 2 * i + 1)) / 4294967296.0;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor trunc_normal(const Shape& shape, double mean, double std, double a, double b, Generator& gen, DType dtype) {
  if (!(a < b)) throw std::invalid_argument("trunc_normal: expected a < b");
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_indexed(shape, dtype, [=](uint64_t i) {
    double u = lo + (hi - lo) * double(philox_uniform(seed, stream, off + i));
    double x = mean + std * std::sqrt(2.0) * erfinv(2.0 * u - 1.0);
    return std::clamp(x, a, b);
  });
}

Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype) {
  const uint64_t seed = gen.seed(), stream = gen.stream(), off = gen.reserve(uint64_t(shape_numel(shape)));
  return fill_indexed(shape, dtype, [=](uint64_t i) {
    return double(philox_uniform(seed, stream, off + i)) < p ? 1.0 : 0.0;
  });
}

}  // namespace rv
