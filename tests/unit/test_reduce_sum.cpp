// sum and mean against a plain reference loop (long double): every path of the kernel (column
// sums of whole rows, chunked when there are many rows; contiguous runs in lanes; strided
// fallback), strided and permuted inputs, size-1 and empty dims, f64 and bf16, the gradient,
// and results independent of the thread count.
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// sum of x over `dims` (keepdim), straight from the definition: visit every element once and
// add it into the output element it maps to.
Tensor ref_sum(const Tensor& x, const Shape& dims) {
  const int64_t nd = x.dim();
  std::vector<bool> red(nd, dims.empty());  // no dims: all of them
  for (int64_t d : dims) red[d] = true;
  Shape os = x.shape();
  for (int64_t d = 0; d < nd; ++d)
    if (red[d]) os[d] = 1;
  std::vector<double> xv = x.to_double_vector();  // row-major values of x
  std::vector<long double> acc(size_t(shape_numel(os)), 0.0L);
  std::vector<int64_t> idx(nd, 0);
  for (size_t i = 0; i < xv.size(); ++i) {
    int64_t o = 0;
    for (int64_t d = 0; d < nd; ++d) o = o * os[d] + (red[d] ? 0 : idx[d]);
    acc[o] += xv[i];
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < x.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return from_vector(std::vector<double>(acc.begin(), acc.end()), os, DType::f64);
}

void check_sum(const Tensor& x, const Shape& dims, double rtol = 1e-6, double atol = 1e-6) {
  CAPTURE(shape_str(x.shape()));
  CAPTURE(shape_str(dims));
  Tensor s = sum(x, dims, true);
  CHECK(s.dtype() == x.dtype());
  RV_EXPECT_CLOSE(s, ref_sum(x, dims), .rtol = rtol, .atol = atol);
}

}  // namespace

TEST_CASE("sum: column sums of whole rows (the bias-gradient path), chunked when rows are many") {
  check_sum(test::test_tensor({7, 5}, 1), {0});                      // few rows: one chunk
  check_sum(test::test_tensor({3000, 40}, 2), {0}, 1e-5, 1e-5);      // 23 chunks, 40 columns
  check_sum(test::test_tensor({1100, 300}, 3), {0}, 1e-5, 1e-5);     // two tiles of columns
  check_sum(test::test_tensor({6, 70, 33}, 4), {0, 1}, 1e-5, 1e-5);  // two reduced dims
  check_sum(test::test_tensor({40, 3, 50, 6}, 5), {0, 2}, 1e-5, 1e-5);  // a kept dim in between
  check_sum(test::test_tensor({2001, 24}, 6, DType::f64), {0}, 1e-12, 1e-12);
  check_sum(test::test_noncontiguous({300, 20}, 7), {0}, 1e-5, 1e-5);
  check_sum(test::test_tensor({20, 300}, 8).t(), {1}, 1e-5, 1e-5);  // transposed: rows in memory
}

TEST_CASE("sum: contiguous runs (over the last dims) and the strided fallback") {
  check_sum(test::test_tensor({5, 37}, 9), {1});                 // runs of 37: lanes and a tail
  check_sum(test::test_tensor({4, 6, 50}, 10), {0, 2}, 1e-5, 1e-5);  // runs walked over dim 0
  check_sum(test::test_tensor({3, 8, 7, 7}, 11), {0, 2, 3});      // conv bias gradient (B, O, H, W)
  check_sum(test::test_tensor({6, 5}, 12), {1});                  // runs too short for lanes
  check_sum(test::test_tensor({9, 40}, 13).t(), {0});             // strided: stride 40
  check_sum(test::test_tensor({2, 3, 4}, 14, DType::f64), {}, 1e-12, 1e-12);  // everything
  check_sum(test::test_tensor({1000, 3}, 15).t(), {}, 1e-5, 1e-5);
}

TEST_CASE("sum: size-1 and empty dims, bf16, keepdim off, mean, and the gradient") {
  check_sum(test::test_tensor({1, 1, 4}, 16), {0, 1});
  CHECK(sum(empty({0, 5}), {0}).to_vector<float>() == std::vector<float>(5, 0.0f));
  CHECK(sum(empty({4, 0}), {1}).to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(sum(empty({0, 5}), {1}).shape() == Shape{0});
  Tensor xb = test::test_tensor({300, 16}, 17, DType::bf16);
  Tensor sb = sum(xb, {0});
  CHECK(sb.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(sb, ref_sum(xb, {0}).reshape({16}), .rtol = 1.0 / 128, .atol = 1e-2);
  Tensor x = test::test_tensor({200, 3, 9}, 18);
  RV_EXPECT_CLOSE(mean(x, {0, 2}), mul(ref_sum(x, {0, 2}).reshape({3}), 1.0 / 1800), .rtol = 1e-6,
                  .atol = 1e-7);
  Tensor xl = x.detach().requires_grad_();
  sum(xl, {0}).backward(test::test_tensor({3, 9}, 19));
  RV_EXPECT_CLOSE(xl.grad(), test::test_tensor({3, 9}, 19).expand({200, 3, 9}), .rtol = 0, .atol = 0);
}

TEST_CASE("sum: results do not depend on the thread count") {
#ifdef _OPENMP
  const int prev = omp_get_max_threads();
  for (auto [shape, dims] : {std::pair{Shape{100352 / 16, 96}, Shape{0}}, std::pair{Shape{64, 40, 33}, Shape{0, 2}},
                             std::pair{Shape{512, 300}, Shape{1}}}) {
    Tensor x = test::test_tensor(shape, 20);
    std::vector<std::vector<float>> r;
    for (int t : {1, 2, 3, 5}) {
      omp_set_num_threads(t);
      r.push_back(sum(x, dims).to_vector<float>());
    }
    omp_set_num_threads(prev);
    for (size_t i = 1; i < r.size(); ++i) CHECK(r[i] == r[0]);
  }
#endif
}
