// linear_assignment.cpp: linear_sum_assignment by shortest augmenting paths (see the header).
//
// The idea, for n rows <= m columns: keep dual potentials u (rows) and v (columns) such that
// every reduced cost c[i][j] - u[i] - v[j] is >= 0 and is exactly 0 on the pairs assigned so far.
// Add the rows one at a time. For the new row, a Dijkstra search over reduced costs finds the
// cheapest alternating path (row -> column -> the row that owns it -> column ...) ending at a
// free column. Flipping the path assigns one more row; shifting the potentials by the path
// lengths keeps the invariant, so the partial assignment stays optimal. Each search costs
// O(n m), so n rows cost O(n^2 m).
#include "models/det/linear_assignment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace rv::models::det {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The solver for an n x m problem with n <= m, costs row-major in `c`.
class ShortestAugmentingPath {
 public:
  ShortestAugmentingPath(const double* c, int64_t n, int64_t m)
      : c_(c), n_(n), m_(m), u_(size_t(n), 0.0), v_(size_t(m), 0.0), col_of_row_(size_t(n), -1),
        row_of_col_(size_t(m), -1), dist_(size_t(m)), prev_row_(size_t(m)), row_seen_(size_t(n)),
        col_done_(size_t(m)), unvisited_(size_t(m)) {}

  // Assigns every row; returns false when some row can only be assigned through +inf.
  bool solve() {
    for (int64_t r = 0; r < n_; ++r)
      if (!add_row(r)) return false;
    return true;
  }
  const std::vector<int64_t>& col_of_row() const { return col_of_row_; }

 private:
  // Dijkstra from the free row `start`. On return dist_[j] is the length of the shortest path
  // to each column reached (final for the columns in col_done_), prev_row_[j] the row before
  // column j on it. Returns the free column the path ends at (-1: none at finite cost) and its
  // length in `length`.
  int64_t shortest_path(int64_t start, double& length) {
    std::fill(dist_.begin(), dist_.end(), kInf);
    std::fill(row_seen_.begin(), row_seen_.end(), char(0));
    std::fill(col_done_.begin(), col_done_.end(), char(0));
    // Columns not yet final. They are scanned from the last column down and removed by moving
    // the last entry into the hole: the order decides which column wins a tie, and this one is
    // scipy's, so equal-cost problems get scipy's answer.
    int64_t left = m_;
    for (int64_t k = 0; k < m_; ++k) unvisited_[size_t(k)] = m_ - 1 - k;
    double reach = 0.0;  // length of the path up to row i
    int64_t i = start;
    for (;;) {
      row_seen_[size_t(i)] = 1;
      const double* ci = c_ + i * m_;
      int64_t best = -1;
      double best_dist = kInf;
      for (int64_t k = 0; k < left; ++k) {
        const int64_t j = unvisited_[size_t(k)];
        const double d = reach + ci[j] - u_[size_t(i)] - v_[size_t(j)];
        if (d < dist_[size_t(j)]) {
          dist_[size_t(j)] = d;
          prev_row_[size_t(j)] = i;
        }
        // Among equally close columns prefer a free one: the path can end there, which keeps
        // searches on integer costs with many ties short.
        if (dist_[size_t(j)] < best_dist || (dist_[size_t(j)] == best_dist && row_of_col_[size_t(j)] == -1)) {
          best_dist = dist_[size_t(j)];
          best = k;
        }
      }
      if (best_dist == kInf) return -1;  // every remaining column is behind +inf
      reach = best_dist;
      const int64_t j = unvisited_[size_t(best)];
      col_done_[size_t(j)] = 1;
      unvisited_[size_t(best)] = unvisited_[size_t(--left)];
      if (row_of_col_[size_t(j)] == -1) {
        length = reach;
        return j;
      }
      i = row_of_col_[size_t(j)];  // continue from the row that owns column j
    }
  }

  bool add_row(int64_t r) {
    double length = 0.0;
    const int64_t sink = shortest_path(r, length);
    if (sink < 0) return false;
    // Shift the potentials so that reduced costs stay >= 0 and become 0 along the new path.
    u_[size_t(r)] += length;
    for (int64_t i = 0; i < n_; ++i)
      if (row_seen_[size_t(i)] && i != r) u_[size_t(i)] += length - dist_[size_t(col_of_row_[size_t(i)])];
    for (int64_t j = 0; j < m_; ++j)
      if (col_done_[size_t(j)]) v_[size_t(j)] -= length - dist_[size_t(j)];
    // Flip the path: walking back from the sink, each row takes the column after it.
    int64_t j = sink;
    for (;;) {
      const int64_t i = prev_row_[size_t(j)];
      row_of_col_[size_t(j)] = i;
      std::swap(col_of_row_[size_t(i)], j);  // j becomes the column row i held before
      if (i == r) break;
    }
    return true;
  }

  const double* c_;
  int64_t n_, m_;
  std::vector<double> u_, v_;                       // dual potentials
  std::vector<int64_t> col_of_row_, row_of_col_;    // the assignment (-1: free)
  std::vector<double> dist_;                        // per search: path length to each column
  std::vector<int64_t> prev_row_;                   // per search: the row before each column
  std::vector<char> row_seen_, col_done_;           // per search: rows expanded, columns final
  std::vector<int64_t> unvisited_;                  // per search: columns not yet final
};

}  // namespace

Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0)
    throw std::invalid_argument("linear_sum_assignment: expected a non-negative shape, got " + std::to_string(rows) +
                                " x " + std::to_string(cols));
  if (int64_t(cost.size()) != rows * cols)
    throw std::invalid_argument("linear_sum_assignment: expected " + std::to_string(rows) + " x " +
                                std::to_string(cols) + " = " + std::to_string(rows * cols) + " costs, got " +
                                std::to_string(cost.size()));
  for (double x : cost)
    if (std::isnan(x) || x == -kInf)
      throw std::invalid_argument("linear_sum_assignment: matrix contains invalid numeric entries (NaN or -inf)");
  Assignment out;
  if (rows == 0 || cols == 0) return out;

  // The solver wants rows <= cols; a tall matrix is solved on its transpose.
  const bool tall = rows > cols;
  std::vector<double> transposed;
  if (tall) {
    transposed.resize(cost.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) transposed[size_t(c * rows + r)] = cost[size_t(r * cols + c)];
  }
  const int64_t n = tall ? cols : rows, m = tall ? rows : cols;
  ShortestAugmentingPath solver(tall ? transposed.data() : cost.data(), n, m);
  if (!solver.solve()) throw std::invalid_argument("linear_sum_assignment: cost matrix is infeasible");

  std::vector<std::pair<int64_t, int64_t>> pairs(static_cast<size_t>(n));  // (row, col) of the original matrix
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = solver.col_of_row()[size_t(i)];
    pairs[size_t(i)] = tall ? std::make_pair(j, i) : std::make_pair(i, j);
  }
  std::sort(pairs.begin(), pairs.end());  // rows are distinct: sorting by row as scipy
  out.row_ind.reserve(pairs.size());
  out.col_ind.reserve(pairs.size());
  for (const auto& [r, c] : pairs) {
    out.row_ind.push_back(r);
    out.col_ind.push_back(c);
    out.total_cost += cost[size_t(r * cols + c)];
  }
  return out;
}

}  // namespace rv::models::det
