// test_gather_scatter.cpp: gather, scatter_add, index_add, one_hot and max / min over all
// elements on cuda against the CPU ops: values, and the gradients of every differentiable input
// through autograd, on odd shapes (repeated indices, an index smaller than x in other dims,
// non-contiguous x, ties and NaN for max / min). Skipped (exit 77) without a GPU.
//
// Tolerances: gather and take move elements, and the scatter-adds add in the CPU's order with
// one writer per element (no atomics), so every comparison is bit for bit (rtol = atol = 0).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/index.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

using Fn = std::function<Tensor(const Tensor&, const Tensor&)>;

Tensor idx_tensor(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s); }

struct Result {
  Tensor y, gx, gs;
};

Result run(const Fn& f, const Tensor& x, const Tensor& src, Device dev) {
  Tensor xl = x.to(dev).detach().requires_grad_();
  Tensor sl = src.defined() ? src.to(dev).detach().requires_grad_() : Tensor();
  Tensor y = f(xl, sl);
  y.backward(test::test_tensor(y.shape(), 9, x.dtype()).to(dev));
  return {y.cpu(), xl.grad().cpu(), sl.defined() ? sl.grad().cpu() : Tensor()};
}

void compare(const char* what, const Fn& f, const Shape& xs, const Shape& ss = {}) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(what);
    CAPTURE(dtype_name(dt));
    const Tensor x = test::test_tensor(xs, 1, dt);
    const Tensor src = ss.empty() ? Tensor() : test::test_tensor(ss, 2, dt);
    const Result want = run(f, x, src, cpu_device());
    const Result got = run(f, x, src, cuda_device(0));
    RV_EXPECT_CLOSE(got.y, want.y, .rtol = 0, .atol = 0);
    RV_EXPECT_CLOSE(got.gx, want.gx, .rtol = 0, .atol = 0);
    if (src.defined()) RV_EXPECT_CLOSE(got.gs, want.gs, .rtol = 0, .atol = 0);
  }
}

}  // namespace

TEST_CASE("gather on cuda equals the CPU, and its gradient (a scatter-add)") {
  const Tensor i1 = idx_tensor({4, 0, 4, 4, 1, 2, 3, 3, 0, 0, 0, 4, 2, 2, 1, 1, 0, 3, 3, 3, 4, 4, 4, 4}, {3, 2, 4});
  compare("dim 1, repeats", [&](const Tensor& x, const Tensor&) { return gather(x, 1, i1.cuda()); }, {3, 5, 4});
  const Tensor i2 = idx_tensor({3, 0, 1, 1, 2, 2}, {2, 3, 1});
  compare("last dim, smaller index", [&](const Tensor& x, const Tensor&) { return gather(x, -1, i2); }, {3, 5, 4});
  const Tensor i0 = idx_tensor({2, 0, 1, 2}, {1, 2, 2});
  compare("transposed x", [&](const Tensor& x, const Tensor&) { return gather(x.transpose(0, 2), 0, i0); }, {3, 5, 4});
  // a large one: the top-1 class per row of (4096, 1000) logits
  std::vector<int64_t> labels(4096);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t((i * 7919) % 1000);
  const Tensor il = idx_tensor(labels, {4096, 1});
  compare("rows", [&](const Tensor& x, const Tensor&) { return gather(x, 1, il); }, {4096, 1000});
}

TEST_CASE("scatter_add and index_add on cuda equal the CPU, values and both gradients") {
  const Tensor i1 = idx_tensor({4, 0, 4, 4, 1, 2, 3, 3, 0, 0, 0, 4, 2, 2, 1, 1, 0, 3}, {3, 2, 3});
  compare("scatter_add", [&](const Tensor& x, const Tensor& s) { return scatter_add(x, 1, i1, s); }, {3, 5, 4},
          {3, 3, 4});
  compare("index_add dim 1", [&](const Tensor& x, const Tensor& s) { return index_add(x, 1, idx_tensor({4, 1, 4}, {3}), s); },
          {3, 5, 4}, {3, 3, 4});
  compare("index_add dim 0", [&](const Tensor& x, const Tensor& s) { return index_add(x, 0, idx_tensor({2, 2, 0}, {3}), s); },
          {3, 5, 4}, {3, 5, 4});
}

TEST_CASE("one_hot and max / min over all elements on cuda") {
  const Tensor ids = idx_tensor({2, 0, 1, 3, 3}, {5});
  const Tensor oh = one_hot(ids.cuda(), 4);
  CHECK(oh.device() == cuda_device(0));
  CHECK(oh.cpu().to_double_vector() == one_hot(ids, 4).to_double_vector());
  compare("max", [](const Tensor& x, const Tensor&) { return max(x); }, {7, 33, 5});
  compare("min", [](const Tensor& x, const Tensor&) { return min(x); }, {1000});
  // ties share the gradient; a NaN wins
  const Tensor tie = from_vector(std::vector<double>{1, 3, 3, -2, 3}, {5}, DType::f32);
  Tensor td = tie.cuda().detach().requires_grad_();
  Tensor m = max(td);
  m.backward(full({}, 1.0, DType::f32, cuda_device(0)));
  CHECK(m.cpu().item() == 3.0);
  const double third = double(float(1.0 / 3));  // the f32 gradient
  CHECK(td.grad().cpu().to_double_vector() == std::vector<double>{0, third, third, 0, third});
  const Tensor withnan = from_vector(std::vector<double>{1, std::nan(""), 3}, {3}, DType::f32);
  CHECK(std::isnan(max(withnan.cuda()).cpu().item()));
}
