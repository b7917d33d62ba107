// augment_random.cpp: scalar draws from Philox (see augment_random.h).
#include "data/augment_random.h"

#include "data/random_draws.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace rv::data {

// uniform() and randint() are random_draws.h's draws (the same Philox words), so a box drawn
// here and one drawn by augment_params.h from the same generator agree.
double RandomDraws::uniform() { return draw_uniform01(gen_); }

int64_t RandomDraws::randint(int64_t lo, int64_t hi) {
  if (hi < lo) throw std::invalid_argument("randint: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return draw_int(gen_, lo, hi);
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
