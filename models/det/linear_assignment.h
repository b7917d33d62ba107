// linear_assignment.h: the linear sum assignment problem (scipy.optimize.linear_sum_assignment),
// solved by shortest augmenting paths with dual potentials (Jonker-Volgenant; the rectangular
// form of Crouse, "On implementing 2D rectangular assignment algorithms", 2016).
//
// Given a cost matrix (rows x cols, row-major f64), choose min(rows, cols) entries, at most one
// per row and per column, whose total cost is smallest. DETR-style detectors use it to pair
// each ground-truth box with one query (models/det/hungarian_matcher.h).
//
// Results follow scipy: (row_ind, col_ind) sorted by row, and the same choice among equal-cost
// assignments (rows are added in order; among equally short paths the one reaching a free column
// is taken first, and columns are scanned in scipy's order), so a detector trained here picks the
// same query as its PyTorch reference when costs tie.
//
// Cost: O(n^2 m) time with n = min(rows, cols), m = max(rows, cols); O(n + m) extra memory
// (a wide problem is solved as is, a tall one on its transpose).
#pragma once
#include <cstdint>
#include <vector>

namespace rv::models::det {

struct Assignment {
  std::vector<int64_t> row_ind;  // ascending
  std::vector<int64_t> col_ind;  // col_ind[k] is the column given to row_ind[k]
  double total_cost = 0.0;       // sum of the chosen entries
};

// cost: rows * cols values, row-major. Entries may be +inf (a forbidden pair) as long as some
// assignment avoids them all; NaN or -inf is an std::invalid_argument ("matrix contains invalid
// numeric entries", as scipy), and an assignment forced through +inf is an std::invalid_argument
// ("cost matrix is infeasible"). An empty matrix (rows or cols 0) gives empty results.
Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols);

}  // namespace rv::models::det
