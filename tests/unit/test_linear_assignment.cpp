// linear_sum_assignment (models/det/linear_assignment.h) against brute force: every shape up to
// 7 x 7 (wide and tall) with small integer costs full of ties, +inf entries, the error cases and
// empty matrices. scipy's exact choices on ties are checked in tests/fixtures/test_det_losses.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/det/linear_assignment.h"

using namespace rv::models::det;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The smallest total over every way of giving each of the min(rows, cols) "short side" lines a
// distinct "long side" line, by plain recursion (7! = 5040 assignments at most).
double brute_force_min(const std::vector<double>& c, int64_t rows, int64_t cols) {
  const bool tall = rows > cols;
  const int64_t n = tall ? cols : rows, m = tall ? rows : cols;
  auto at = [&](int64_t i, int64_t j) { return tall ? c[size_t(j * cols + i)] : c[size_t(i * cols + j)]; };
  std::vector<char> used(size_t(m), 0);
  double best = kInf;
  auto go = [&](auto&& self, int64_t i, double total) -> void {
    if (i == n) {
      best = std::min(best, total);
      return;
    }
    for (int64_t j = 0; j < m; ++j) {
      if (used[size_t(j)]) continue;
      used[size_t(j)] = 1;
      self(self, i + 1, total + at(i, j));
      used[size_t(j)] = 0;
    }
  };
  go(go, 0, 0.0);
  return best;
}

// Checks that `a` is a valid assignment of the rows x cols problem in scipy's output form.
void check_valid(const Assignment& a, const std::vector<double>& c, int64_t rows, int64_t cols) {
  const size_t k = size_t(std::min(rows, cols));
  REQUIRE(a.row_ind.size() == k);
  REQUIRE(a.col_ind.size() == k);
  std::set<int64_t> cols_used;
  double total = 0.0;
  for (size_t t = 0; t < k; ++t) {
    CHECK(a.row_ind[t] >= 0);
    CHECK(a.row_ind[t] < rows);
    CHECK(a.col_ind[t] >= 0);
    CHECK(a.col_ind[t] < cols);
    if (t > 0) CHECK(a.row_ind[t] > a.row_ind[t - 1]);  // sorted by row, each row once
    cols_used.insert(a.col_ind[t]);
    total += c[size_t(a.row_ind[t] * cols + a.col_ind[t])];
  }
  CHECK(cols_used.size() == k);
  CHECK(a.total_cost == total);
}

}  // namespace

TEST_CASE("linear_sum_assignment equals brute force on every shape up to 7 x 7, integer costs with ties") {
  std::mt19937_64 gen(20240611);
  int checked = 0;
  for (int64_t rows = 0; rows <= 7; ++rows)
    for (int64_t cols = 0; cols <= 7; ++cols)
      for (int trial = 0; trial < 6; ++trial) {
        // Few distinct values (0..2 on half the trials, 0..9 on the rest): many equal optima.
        const uint64_t levels = trial % 2 == 0 ? 3 : 10;
        std::vector<double> c(size_t(rows * cols));
        for (double& x : c) x = double(gen() % levels);
        CAPTURE(rows);
        CAPTURE(cols);
        CAPTURE(trial);
        const Assignment a = linear_sum_assignment(c, rows, cols);
        check_valid(a, c, rows, cols);
        if (rows > 0 && cols > 0) CHECK(a.total_cost == brute_force_min(c, rows, cols));
        ++checked;
      }
  CHECK(checked == 8 * 8 * 6);
}

TEST_CASE("linear_sum_assignment on real-valued, negative and large costs equals brute force") {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);  // values need not be portable: only compared with brute force
  for (int64_t rows = 1; rows <= 7; ++rows)
    for (int64_t cols = 1; cols <= 7; ++cols) {
      std::vector<double> c(size_t(rows * cols));
      for (double& x : c) x = (unit(gen) - 0.5) * 1e9 + double(gen() % 4);
      const Assignment a = linear_sum_assignment(c, rows, cols);
      check_valid(a, c, rows, cols);
      CHECK(a.total_cost == doctest::Approx(brute_force_min(c, rows, cols)).epsilon(1e-12));
    }
}

TEST_CASE("linear_sum_assignment: +inf entries are forbidden pairs when a finite assignment exists") {
  std::mt19937_64 gen(99);
  for (int64_t rows = 1; rows <= 6; ++rows)
    for (int64_t cols = 1; cols <= 6; ++cols)
      for (int trial = 0; trial < 4; ++trial) {
        std::vector<double> c(size_t(rows * cols));
        for (double& x : c) x = gen() % 4 == 0 ? kInf : double(gen() % 5);
        const double best = brute_force_min(c, rows, cols);
        CAPTURE(rows);
        CAPTURE(cols);
        if (std::isinf(best)) {
          CHECK_THROWS_WITH_AS(linear_sum_assignment(c, rows, cols), doctest::Contains("cost matrix is infeasible"),
                               std::invalid_argument);
        } else {
          const Assignment a = linear_sum_assignment(c, rows, cols);
          check_valid(a, c, rows, cols);
          CHECK(a.total_cost == best);
        }
      }
  // A fixed infeasible case: both rows can only use column 0.
  CHECK_THROWS_WITH_AS(linear_sum_assignment({1.0, kInf, kInf, 2.0, kInf, kInf}, 2, 3),
                       "linear_sum_assignment: cost matrix is infeasible", std::invalid_argument);
  // All +inf but one entry per row in distinct columns: the one finite assignment.
  const Assignment a = linear_sum_assignment({kInf, 5.0, kInf, kInf, kInf, 1.0}, 2, 3);
  CHECK(a.row_ind == std::vector<int64_t>{0, 1});
  CHECK(a.col_ind == std::vector<int64_t>{1, 2});
}

TEST_CASE("linear_sum_assignment: NaN and -inf are refused, shapes are checked") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(linear_sum_assignment({1.0, nan, 2.0, 3.0}, 2, 2),
                       doctest::Contains("matrix contains invalid numeric entries"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_sum_assignment({1.0, 2.0, -kInf}, 1, 3),
                       doctest::Contains("matrix contains invalid numeric entries"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_sum_assignment({1.0, 2.0, 3.0}, 2, 2),
                       "linear_sum_assignment: expected 2 x 2 = 4 costs, got 3", std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_sum_assignment({}, -1, 0), doctest::Contains("non-negative shape"),
                       std::invalid_argument);
}

TEST_CASE("linear_sum_assignment: empty matrices give empty results") {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{0, 0}, {0, 5}, {5, 0}}) {
    const Assignment a = linear_sum_assignment({}, r, c);
    CHECK(a.row_ind.empty());
    CHECK(a.col_ind.empty());
    CHECK(a.total_cost == 0.0);
  }
}

TEST_CASE("linear_sum_assignment: known answers, wide and tall") {
  // The classic 3 x 3 example of scipy's documentation style: rows 0, 1, 2 take 1, 0, 2 (total 5).
  const std::vector<double> c{4, 1, 3, 2, 0, 5, 3, 2, 2};
  Assignment a = linear_sum_assignment(c, 3, 3);
  CHECK(a.row_ind == std::vector<int64_t>{0, 1, 2});
  CHECK(a.col_ind == std::vector<int64_t>{1, 0, 2});
  CHECK(a.total_cost == 5.0);
  // Tall (3 x 2): two rows get a column, the rows are reported in ascending order.
  a = linear_sum_assignment({9, 9, 1, 8, 7, 2}, 3, 2);
  CHECK(a.row_ind == std::vector<int64_t>{1, 2});
  CHECK(a.col_ind == std::vector<int64_t>{0, 1});
  CHECK(a.total_cost == 3.0);
}

TEST_CASE("linear_sum_assignment: a DINO-sized problem (900 queries x 100 targets) admits no improving swap") {
  // No brute force at this size. Optimality implies that no single exchange helps: moving a
  // target to a free query, or swapping the queries of two targets. Solving the transpose (the
  // same problem, wide) must give the same total.
  const int64_t Q = 900, T = 100;
  std::mt19937_64 gen(3);
  std::vector<double> c(size_t(Q * T)), ct(size_t(Q * T));
  for (double& x : c) x = double(gen() % 100000) / 7.0;
  for (int64_t q = 0; q < Q; ++q)
    for (int64_t t = 0; t < T; ++t) ct[size_t(t * Q + q)] = c[size_t(q * T + t)];
  const Assignment a = linear_sum_assignment(c, Q, T);
  check_valid(a, c, Q, T);
  const Assignment b = linear_sum_assignment(ct, T, Q);
  check_valid(b, ct, T, Q);
  CHECK(a.total_cost == doctest::Approx(b.total_cost).epsilon(1e-12));
  std::vector<int64_t> query_of(static_cast<size_t>(T));
  std::vector<char> used(static_cast<size_t>(Q), 0);
  for (size_t k = 0; k < a.row_ind.size(); ++k) {
    query_of[size_t(a.col_ind[k])] = a.row_ind[k];
    used[size_t(a.row_ind[k])] = 1;
  }
  auto at = [&](int64_t q, int64_t t) { return c[size_t(q * T + t)]; };
  int64_t improving = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t qt = query_of[size_t(t)];
    for (int64_t q = 0; q < Q; ++q)
      if (!used[size_t(q)] && at(q, t) < at(qt, t)) ++improving;
    for (int64_t s = 0; s < t; ++s) {
      const int64_t qs = query_of[size_t(s)];
      if (at(qt, s) + at(qs, t) < at(qs, s) + at(qt, t) - 1e-9) ++improving;
    }
  }
  CHECK(improving == 0);
}
