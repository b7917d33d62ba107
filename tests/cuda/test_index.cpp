// test_index.cpp: index_select and embedding on cuda against the CPU ops: any dim, odd lengths
// (1, 7, 197, 1000, 4097 indices), repeated indices, empty index, non-contiguous inputs, a
// device-resident index, bf16 / int64 data (a raw copy), and the gradients through autograd
// (the deterministic bucketed scatter-add). Skipped (exit 77) without a GPU.
//
// Tolerances: the forward is a copy (bit for bit). The backward adds each bucket in ascending
// index position on both sides, starting from 0, so it is bit for bit too (rtol = atol = 0).
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/index.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// K indices in [0, bound), many repeats, reproducible.
Tensor some_indices(int64_t K, int64_t bound, uint64_t seed) {
  std::vector<int64_t> v(static_cast<size_t>(K));
  uint64_t s = seed * 2654435761u + 1;
  for (auto& e : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = int64_t((s >> 33) % uint64_t(bound));
  }
  return from_vector(v, {K});
}

struct Result {
  Tensor y, dx;
};

// index_select on `device` with a weighted-sum loss (so each output has its own gradient).
Result run_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& gy, Device device) {
  Tensor xl = x.to(device).detach().requires_grad_();
  Tensor y = index_select(xl, dim, idx);
  y.backward(gy.to(device));
  return {y.cpu(), xl.grad().cpu()};
}

}  // namespace

TEST_CASE("index_select on cuda equals the CPU: any dim, odd lengths, repeats, forward and backward") {
  struct Case {
    Shape x;
    int64_t dim, K;
  };
  const Case cases[] = {
      {{169, 6}, 0, 2401},     // Swin's relative position bias table, window 7, 6 heads
      {{7, 5, 3}, 1, 1},       // one index
      {{7, 5, 3}, 2, 7},
      {{197, 33}, 0, 1000},
      {{3, 4097}, 1, 4097},
      {{2, 9, 1, 5}, 3, 197},  // size-1 dim before the indexed one
      {{13}, 0, 5},            // 1-D
      {{6, 4}, 0, 0},          // empty index: empty output, zero gradient
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(c.x));
      CAPTURE(c.dim);
      CAPTURE(c.K);
      const Tensor x = test::test_tensor(c.x, 1, dt);
      const Tensor idx = some_indices(c.K, c.x[size_t(c.dim)], 7);
      Shape ys = c.x;
      ys[size_t(c.dim)] = c.K;
      const Tensor gy = test::test_tensor(ys, 2, dt);
      const Result want = run_select(x, c.dim, idx, gy, cpu_device());
      const Result got = run_select(x, c.dim, idx, gy, cuda_device(0));
      RV_EXPECT_CLOSE(got.y, want.y, .rtol = 0, .atol = 0);
      RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 0, .atol = 0);
    }
  }
}

TEST_CASE("index_select on cuda: non-contiguous x, a device index, int32 index, raw-copy dtypes") {
  const Tensor base = test::test_tensor({11, 8}, 3);
  const Tensor xt = base.t();  // (8, 11), non-contiguous
  const Tensor idx = some_indices(19, 11, 4);
  RV_EXPECT_CLOSE(index_select(xt.cuda(), 1, idx).cpu(), index_select(xt, 1, idx), .rtol = 0, .atol = 0);
  // An index already on the device (copied back once for the bounds check), and an int32 one.
  RV_EXPECT_CLOSE(index_select(xt.cuda(), 1, idx.cuda()).cpu(), index_select(xt, 1, idx), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(index_select(xt.cuda(), 1, idx.to(DType::i32)).cpu(), index_select(xt, 1, idx), .rtol = 0,
                  .atol = 0);
  // bf16 and int64 data: the forward is a copy of raw elements.
  const Tensor xb = base.to(DType::bf16);
  const Tensor i5 = idx.slice(0, 0, 5);
  RV_EXPECT_CLOSE(index_select(xb.cuda(), 0, i5).cpu().to(DType::f32), index_select(xb, 0, i5).to(DType::f32),
                  .rtol = 0, .atol = 0);
  const Tensor xi = arange(int64_t(40)).view({8, 5});
  const Tensor i9 = some_indices(9, 8, 5);
  RV_EXPECT_CLOSE(index_select(xi.cuda(), 0, i9).cpu().to(DType::f64), index_select(xi, 0, i9).to(DType::f64),
                  .rtol = 0, .atol = 0);
}

TEST_CASE("index_select on cuda: errors are clear") {
  const Tensor x = test::test_tensor({4, 3}, 1).cuda();
  CHECK_THROWS_WITH_AS(index_select(x, 0, from_vector(std::vector<int64_t>{0, 4}, {2})),
                       doctest::Contains("index_select: index 4 at position [1] is out of range"), std::out_of_range);
  // The backward of a bf16 select is not implemented on the device yet: it says so.
  Tensor xb = test::test_tensor({4, 3}, 1).to(DType::bf16).cuda().detach().requires_grad_();
  Tensor y = index_select(xb, 0, from_vector(std::vector<int64_t>{1, 1}, {2}));
  CHECK_THROWS_WITH(y.backward(ones({2, 3}).to(DType::bf16).cuda()), doctest::Contains("not implemented on cuda:0"));
}

TEST_CASE("embedding on cuda equals the CPU, forward and the weight gradient (repeated rows)") {
  const Tensor w = test::test_tensor({50, 24}, 8);
  const Tensor ids = some_indices(3 * 17, 50, 9).view({3, 17});
  const Tensor gy = test::test_tensor({3, 17, 24}, 10);
  Tensor wc = w.detach().requires_grad_(), wd = w.cuda().detach().requires_grad_();
  Tensor yc = embedding(wc, ids), yd = embedding(wd, ids);
  RV_EXPECT_CLOSE(yd.cpu(), yc, .rtol = 0, .atol = 0);
  yc.backward(gy);
  yd.backward(gy.cuda());
  CHECK(wd.grad().device() == cuda_device(0));
  RV_EXPECT_CLOSE(wd.grad().cpu(), wc.grad(), .rtol = 0, .atol = 0);
}

TEST_CASE("index_select backward on cuda is deterministic: the same bits on every run") {
  const Tensor x = test::test_tensor({169, 12}, 11);
  const Tensor idx = some_indices(4097, 169, 12);
  const Tensor gy = test::test_tensor({4097, 12}, 13);
  const Result a = run_select(x, 0, idx, gy, cuda_device(0));
  const Result b = run_select(x, 0, idx, gy, cuda_device(0));
  RV_EXPECT_CLOSE(a.dx, b.dx, .rtol = 0, .atol = 0);
}
