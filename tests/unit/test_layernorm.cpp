// layer_norm against PyTorch numbers (pasted below) and a plain reference loop (forward and
// backward): one or two normalised dims, with and without weight/bias, strided and bf16
// inputs, rows of one element, no rows; determinism of dweight/dbias across thread counts;
// error messages.
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

struct RefLN {
  std::vector<double> y, dx, dw, db;
};

// Straight from the definition, in long double: y = (x - mean) / sqrt(var + eps) * w + b, and
// the backward by the chain rule through mean and var (not the fused formula the kernel uses).
RefLN ref_layer_norm(const Tensor& x, int64_t m, const Tensor& w, const Tensor& b, const Tensor& g, double eps) {
  std::vector<double> xv = x.to_double_vector(), gv = g.to_double_vector();
  std::vector<double> wv = w.defined() ? w.to_double_vector() : std::vector<double>(m, 1.0);
  std::vector<double> bv = b.defined() ? b.to_double_vector() : std::vector<double>(m, 0.0);
  const int64_t rows = int64_t(xv.size()) / m;
  RefLN r{std::vector<double>(xv.size()), std::vector<double>(xv.size()), std::vector<double>(m, 0.0),
          std::vector<double>(m, 0.0)};
  for (int64_t row = 0; row < rows; ++row) {
    const double* xr = xv.data() + row * m;
    const double* gr = gv.data() + row * m;
    long double mean = 0, var = 0;
    for (int64_t i = 0; i < m; ++i) mean += xr[i];
    mean /= m;
    for (int64_t i = 0; i < m; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= m;
    const long double rstd = 1.0L / std::sqrt(var + eps);
    // dL/dxhat, then through xhat = (x - mean) * rstd with mean and var depending on x
    long double dvar = 0, dmean = 0;
    std::vector<long double> dxhat(m);
    for (int64_t i = 0; i < m; ++i) {
      const long double xhat = (xr[i] - mean) * rstd;
      r.y[row * m + i] = double(xhat * wv[i] + bv[i]);
      r.dw[i] += double(gr[i] * xhat);
      r.db[i] += gr[i];
      dxhat[i] = (long double)gr[i] * wv[i];
      dvar += dxhat[i] * (xr[i] - mean) * -0.5L * rstd * rstd * rstd;
      dmean += -dxhat[i] * rstd;
    }
    for (int64_t i = 0; i < m; ++i)
      r.dx[row * m + i] = double(dxhat[i] * rstd + dvar * 2.0L * (xr[i] - mean) / m + dmean / m);
  }
  return r;
}

// Runs layer_norm with leaves that require grad, backward with g, and compares to the reference.
void check_case(const Tensor& x0, const Shape& ns, bool with_w, bool with_b, double rtol, double atol) {
  const int64_t m = shape_numel(ns);
  const DType dt = x0.dtype();
  Tensor x = x0.detach().requires_grad_();
  Tensor w = with_w ? test::test_tensor(ns, 101, dt, 0.5, 1.5).requires_grad_() : Tensor();
  Tensor b = with_b ? test::test_tensor(ns, 102, dt).requires_grad_() : Tensor();
  Tensor g = test::test_tensor(x.shape(), 103, dt);
  Tensor y = layer_norm(x, ns, w, b, 1e-5);
  CHECK(y.dtype() == dt);
  REQUIRE(y.shape() == x.shape());
  RefLN ref = ref_layer_norm(x, m, w, b, g, 1e-5);
  RV_EXPECT_CLOSE(y, from_vector(ref.y, x.shape(), DType::f64), .rtol = rtol, .atol = atol);
  y.backward(g);
  RV_EXPECT_CLOSE(x.grad(), from_vector(ref.dx, x.shape(), DType::f64), .rtol = rtol, .atol = atol);
  if (with_w) RV_EXPECT_CLOSE(w.grad(), from_vector(ref.dw, ns, DType::f64), .rtol = rtol, .atol = atol);
  if (with_b) RV_EXPECT_CLOSE(b.grad(), from_vector(ref.db, ns, DType::f64), .rtol = rtol, .atol = atol);
}

}  // namespace

TEST_CASE("layer_norm matches PyTorch on a small float64 case") {
  // Computed with PyTorch 2.x (CPU, float64):
  //   x = [[0.5, -1.25, 2.0, 0.75], [3.0, 3.5, -2.0, 0.0], [-0.3, 0.1, 0.2, -0.6]]
  //   w = [1.5, -0.5, 0.75, 2.0]; b = [0.1, 0.2, -0.3, 0.0]
  //   y = F.layer_norm(x, (4,), w, b, eps=1e-5); y.backward(g) with
  //   g = [[1.0, -2.0, 0.5, 0.25], [0.0, 1.0, -1.0, 3.0], [2.0, 0.5, -0.5, 1.0]]
  Tensor x = from_vector(std::vector<double>{0.5, -1.25, 2.0, 0.75, 3.0, 3.5, -2.0, 0.0, -0.3, 0.1, 0.2, -0.6},
                         {3, 4}, DType::f64)
                 .requires_grad_();
  Tensor w = from_vector(std::vector<double>{1.5, -0.5, 0.75, 2.0}, {4}, DType::f64).requires_grad_();
  Tensor b = from_vector(std::vector<double>{0.1, 0.2, -0.3, 0.0}, {4}, DType::f64).requires_grad_();
  Tensor g = from_vector(std::vector<double>{1.0, -2.0, 0.5, 0.25, 0.0, 1.0, -1.0, 3.0, 2.0, 0.5, -0.5, 1.0}, {3, 4},
                         DType::f64);
  Tensor y = layer_norm(x, {4}, w, b, 1e-5);
  y.backward(g);
  const std::vector<double> y_pt = {0.1, 0.954826603772164, 0.6704913477070681, 0.431329487869808,
                                    1.3519322488641983, -0.32859361618710586, -1.3432768740534984,
                                    -1.0015457990913585, -0.602747648961673, -0.19041536053426278,
                                    0.5198722571219518, -2.810990595846692};
  const std::vector<double> dx_pt = {0.5661199528291231, -0.16362713435452247, -0.14858488118037005,
                                     -0.25390793729423056, -0.2973289840729697, -0.4582241486406131,
                                     -1.2478832694077857, 2.0034364021213684, 4.189995463175989,
                                     -1.2572338174574602, -0.4717566546773768, -2.4610049910411513};
  const std::vector<double> dw_pt = {-0.9369968652822306, 4.466909007997131, 1.4914485591280755,
                                     -2.8538978105766577};
  const std::vector<double> db_pt = {3.0, -0.5, -1.0, 4.25};
  RV_EXPECT_CLOSE(y, from_vector(y_pt, {3, 4}, DType::f64), .rtol = 1e-12, .atol = 1e-14);
  RV_EXPECT_CLOSE(x.grad(), from_vector(dx_pt, {3, 4}, DType::f64), .rtol = 1e-12, .atol = 1e-14);
  RV_EXPECT_CLOSE(w.grad(), from_vector(dw_pt, {4}, DType::f64), .rtol = 1e-12, .atol = 1e-14);
  RV_EXPECT_CLOSE(b.grad(), from_vector(db_pt, {4}, DType::f64), .rtol = 1e-12, .atol = 1e-14);
}

TEST_CASE("layer_norm forward and backward against the reference loop") {
  for (bool with_w : {true, false}) {
    for (bool with_b : {true, false}) {
      CAPTURE(with_w);
      CAPTURE(with_b);
      check_case(test::test_tensor({2, 5, 7}, 1, DType::f64, -2, 3), {7}, with_w, with_b, 1e-12, 1e-13);
      check_case(test::test_tensor({2, 5, 7}, 2, DType::f32, -2, 3), {5, 7}, with_w, with_b, 1e-5, 1e-5);
      check_case(test::test_noncontiguous({3, 6, 4}, 3), {4}, with_w, with_b, 1e-5, 1e-5);
    }
  }
  // many rows: every chunk of the dweight/dbias reduction is used
  check_case(test::test_tensor({2000, 24}, 4, DType::f64), {24}, true, true, 1e-11, 1e-12);
  // a mean far from 0: the two-pass variance stays accurate in f32
  check_case(test::test_tensor({4, 64}, 5, DType::f64, 1000, 1001).to(DType::f32), {64}, true, true, 2e-3, 2e-3);
  // rows of one element: var = 0, xhat = 0, y = b
  check_case(test::test_tensor({5, 1}, 6, DType::f64), {1}, true, true, 1e-12, 1e-13);
}

TEST_CASE("layer_norm: rows longer than a lane block, row tails, and chunks of partial flushes") {
  // The kernel sums rows in 16 lanes over blocks of 4096 values and flushes the dweight/dbias
  // partials every 32 rows: a row of 5000 spans two blocks and ends in a tail of 8 values,
  // rows of 37 end in a tail of 5, and 1037 rows cut into chunks that end mid-flush.
  check_case(test::test_tensor({3, 5000}, 13, DType::f32, -2, 3), {5000}, true, true, 1e-5, 1e-5);
  check_case(test::test_tensor({1037, 37}, 14, DType::f32, -2, 3), {37}, true, true, 1e-5, 1e-5);
  check_case(test::test_tensor({1037, 37}, 15, DType::f64, -2, 3), {37}, true, false, 1e-11, 1e-12);
}

TEST_CASE("layer_norm: bf16 input computes in f32, output and gradients in bf16") {
  Tensor x = test::test_tensor({3, 16}, 7, DType::bf16, -2, 2);
  Tensor y = layer_norm(x, {16}, test::test_tensor({16}, 8, DType::bf16, 0.5, 1.5), Tensor());
  CHECK(y.dtype() == DType::bf16);
  check_case(x, {16}, true, true, 2.0 / 128, 2e-2);
}

TEST_CASE("layer_norm: no rows, and dweight/dbias independent of the thread count") {
  Tensor e = empty({0, 8}).requires_grad_();
  Tensor w = ones({8}).requires_grad_(), b = zeros({8}).requires_grad_();
  Tensor y = layer_norm(e, {8}, w, b);
  CHECK(y.shape() == Shape{0, 8});
  sum(y).backward();
  CHECK(w.grad().to_vector<float>() == std::vector<float>(8, 0.0f));
#ifdef _OPENMP
  Tensor x = test::test_tensor({3000, 40}, 9, DType::f32);
  Tensor wt = test::test_tensor({40}, 10), bt = test::test_tensor({40}, 11);
  Tensor g = test::test_tensor({3000, 40}, 12);
  auto grads = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xl = x.detach().requires_grad_(), wl = wt.detach().requires_grad_(), bl = bt.detach().requires_grad_();
    layer_norm(xl, {40}, wl, bl).backward(g);
    omp_set_num_threads(prev);
    return std::vector<std::vector<float>>{xl.grad().to_vector<float>(), wl.grad().to_vector<float>(),
                                           bl.grad().to_vector<float>()};
  };
  CHECK(grads(1) == grads(2));
  CHECK(grads(1) == grads(3));
#endif
}

TEST_CASE("layer_norm errors say what was expected") {
  CHECK_THROWS_WITH(layer_norm(ones({2, 3}), {4}),
                    "layer_norm: normalized_shape [4] must be non-empty and match the trailing dims of the input, "
                    "i.e. input shape [*, 4], got input shape [2, 3]");
  CHECK_THROWS_WITH(layer_norm(ones({3}), {2, 3}), doctest::Contains("got input shape [3]"));
  CHECK_THROWS_WITH(layer_norm(ones({2, 3}), {}), doctest::Contains("must be non-empty"));
  CHECK_THROWS_WITH(layer_norm(ones({2, 3}), {3}, ones({4})),
                    "layer_norm: weight must have shape normalized_shape [3], got [4]");
  CHECK_THROWS_WITH(layer_norm(ones({2, 3}), {3}, Tensor(), ones({1, 3})),
                    "layer_norm: bias must have shape normalized_shape [3], got [1, 3]");
  CHECK_THROWS_WITH(layer_norm(arange(6).reshape({2, 3}), {3}), "layer_norm: expected a float input, got int64");
}
