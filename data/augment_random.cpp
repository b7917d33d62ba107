// augment_random.cpp: scalar draws from Philox (see augment_random.h).
#include "data/augment_random.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace rv::data {

uint64_t RandomDraws::next64() {
  const uint64_t off = gen_.reserve(2);
  const uint64_t block = off >> 2;  // reserve() returns whole blocks
  const auto r = philox4x32_10({uint32_t(block), uint32_t(block >> 32), uint32_t(gen_.stream()), uint32_t(gen_.stream() >> 32)},
                               {uint32_t(gen_.seed()), uint32_t(gen_.seed() >> 32)});
  return uint64_t(r[0]) << 32 | r[1];
}

double RandomDraws::uniform() { return double(next64() >> 11) * (1.0 / 9007199254740992.0); }

int64_t RandomDraws::randint(int64_t lo, int64_t hi) {
  if (hi < lo) throw std::invalid_argument("randint: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  const uint64_t span = uint64_t(hi - lo) + 1;
  // Multiply-shift: (r * span) >> 64 is in [0, span); the bias is below span / 2^64.
  const unsigned __int128 m = (unsigned __int128)next64() * span;
  return lo + int64_t(uint64_t(m >> 64));
}

double RandomDraws::normal(double mean, double stddev) {
  double u1 = uniform();
  const double u2 = uniform();
  if (u1 <= 0.0) u1 = 1.0 / 9007199254740992.0;
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::vector<int> RandomDraws::permutation(int n) {
  std::vector<int> p(n);
  for (int i = 0; i < n; ++i) p[i] = i;
  for (int i = n - 1; i > 0; --i) std::swap(p[i], p[randint(0, i)]);
  return p;
}

}  // namespace rv::data
