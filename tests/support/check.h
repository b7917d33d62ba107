// check.h: the comparisons every test uses.
//
//   expect_close(actual, expected, {.rtol = 1e-5, .atol = 1e-6});
//       elementwise |a - e| <= atol + rtol * |e| (llm.c's tol + |ref| * eps rule); on failure
//       prints the worst index, both values, and how much of the budget it used.
//   gradcheck(f, {x, w}) 
//       compares the backward pass of f against central finite differences in float64.
//   test_tensor(shape, seed) / test_noncontiguous(...)
//       reproducible inputs: uniform in [-1, 1] from a printed seed.
#pragma once
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rv::test {

struct Tol {
  double rtol = 1e-5;
  double atol = 1e-6;
};

// Returns "" when close, else a report. Shapes must match exactly.
std::string compare(const Tensor& actual, const Tensor& expected, Tol tol);

#define RV_EXPECT_CLOSE(actual, expected, ...)                                          \
  do {                                                                                 \
    std::string rv_report_ = ::rv::test::compare((actual), (expected), ::rv::test::Tol{__VA_ARGS__}); \
    CHECK_MESSAGE(rv_report_.empty(), rv_report_);                                     \
  } while (0)

// Uniform in [lo, hi) from Philox(seed): the same tensor every run and on every machine.
Tensor test_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f32, double lo = -1.0, double hi = 1.0);

// The same values as test_tensor(shape, seed), laid out non-contiguously: stored in a
// larger buffer with the last two dims transposed, then viewed back.
Tensor test_noncontiguous(const Shape& shape, uint64_t seed, DType dtype = DType::f32);

struct GradcheckOptions {
  double eps = 1e-6;    // finite-difference step (f64)
  double rtol = 1e-5;
  double atol = 1e-7;
  uint64_t seed = 1234; // for the random projection of the output
};

// f maps the inputs (float64 leaves that require grad where flagged) to one output tensor.
// The check reduces the output to a scalar with fixed random weights w, so every output
// element contributes: L = sum(w * f(x)). Analytic dL/dx from backward() must match
// (L(x + eps e_i) - L(x - eps e_i)) / 2eps for every element i of every input that requires
// grad. Returns "" on success, else a report naming the input and the worst element.
std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                      GradcheckOptions opt = {});

#define RV_GRADCHECK(f, inputs, ...)                                                    \
  do {                                                                                 \
    std::string rv_report_ = ::rv::test::gradcheck((f), (inputs), ::rv::test::GradcheckOptions{__VA_ARGS__}); \
    CHECK_MESSAGE(rv_report_.empty(), rv_report_);                                     \
  } while (0)

// A float64 leaf requiring grad with test_tensor values.
Tensor grad_input(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace rv::test
