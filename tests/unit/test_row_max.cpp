// cpu::row_max (engine/cpu/row_max.h): the max of a contiguous row, in f32 (the vector-extension
// path) and f64 (the lane loop), against a plain serial loop for every length 0..70 (full vectors,
// tails, both), at every position of the max, with -inf rows, +inf, and NaN (ignored).
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/row_max.h"
#include "tests/support/check.h"

namespace {

template <class T>
T serial_max(const std::vector<T>& x) {
  T m = -std::numeric_limits<T>::infinity();
  for (T v : x)
    if (v > m) m = v;
  return m;
}

template <class T>
void check_type() {
  const T inf = std::numeric_limits<T>::infinity();
  for (int n = 0; n <= 70; ++n) {
    std::vector<T> x(n);
    for (int i = 0; i < n; ++i) x[i] = T(std::sin(1.7 * i + 0.3) * 10.0);  // distinct values
    CHECK(rv::cpu::row_max(x.data(), n) == serial_max(x));
    for (int p = 0; p < n; ++p) {  // the max at every position (lane, tail)
      std::vector<T> y = x;
      y[p] = T(100);
      CHECK(rv::cpu::row_max(y.data(), n) == T(100));
      y[p] = inf;
      CHECK(rv::cpu::row_max(y.data(), n) == inf);
      y[p] = std::numeric_limits<T>::quiet_NaN();  // ignored
      std::vector<T> rest = x;
      rest.erase(rest.begin() + p);
      CHECK(rv::cpu::row_max(y.data(), n) == serial_max(rest));
    }
    std::vector<T> all_neg_inf(n, -inf);
    CHECK(rv::cpu::row_max(all_neg_inf.data(), n) == -inf);
  }
}

}  // namespace

TEST_CASE("row_max: f32 and f64 against a serial loop, every length and max position, inf and NaN") {
  check_type<float>();
  check_type<double>();
}
