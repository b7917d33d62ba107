// matmul and linear against plain reference loops: every torch.matmul shape case (dot,
// vector-matrix, matrix-vector, 2-D, batched with broadcast batch dims), transposed and strided
// inputs, empty dims, bf16/f64, gradients by hand on a small case, linear with 3-D x, and the
// error messages.
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// torch.matmul in doubles, written out directly: promote 1-D operands, broadcast the batch
// dims, loop.
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  const bool va = sa.size() == 1, vb = sb.size() == 1;
  if (va) sa.insert(sa.begin(), 1);
  if (vb) sb.push_back(1);
  const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  const size_t nbatch = std::max(sa.size(), sb.size()) - 2;
  Shape batch(nbatch), ba(nbatch, 1), bb(nbatch, 1);
  for (size_t i = 0; i < sa.size() - 2; ++i) ba[nbatch - (sa.size() - 2) + i] = sa[i];
  for (size_t i = 0; i < sb.size() - 2; ++i) bb[nbatch - (sb.size() - 2) + i] = sb[i];
  for (size_t i = 0; i < nbatch; ++i) batch[i] = std::max(ba[i], bb[i]);
  std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector();
  const int64_t nb = shape_numel(batch);
  std::vector<double> out(nb * M * N, 0.0);
  for (int64_t t = 0; t < nb; ++t) {
    int64_t rem = t, ia = 0, ib = 0, sta = 1, stb = 1;
    for (int64_t d = int64_t(nbatch) - 1; d >= 0; --d) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      ia += (ba[d] == 1 ? 0 : idx) * sta;
      ib += (bb[d] == 1 ? 0 : idx) * stb;
      sta *= ba[d];
      stb *= bb[d];
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += av[(ia * M + i) * K + k] * bv[(ib * K + k) * N + j];
        out[(t * M + i) * N + j] = acc;
      }
  }
  Shape os = batch;
  if (!va) os.push_back(M);
  if (!vb) os.push_back(N);
  return from_vector(out, os, DType::f64);
}

// A tensor with the given values whose last dim has stride 2 (GEMM cannot read it directly).
Tensor strided_last(const Shape& shape, uint64_t seed) {
  Shape big = shape;
  big.back() *= 2;
  Tensor buf = zeros(big);
  Tensor view = buf.slice(-1, 0, big.back(), 2);
  view.copy_(test::test_tensor(shape, seed));
  return view;
}

void check_matmul(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-5) {
  INFO("a ", shape_str(a.shape()), " strides ", shape_str(a.strides()), "  b ", shape_str(b.shape()), " strides ",
       shape_str(b.strides()));
  RV_EXPECT_CLOSE(matmul(a, b), ref_matmul(a, b), .rtol = rtol, .atol = atol);
}

}  // namespace

TEST_CASE("matmul: every torch.matmul shape case") {
  using test::test_tensor;
  check_matmul(test_tensor({7}, 1), test_tensor({7}, 2));                 // dot -> []
  CHECK(matmul(test_tensor({7}, 1), test_tensor({7}, 2)).dim() == 0);
  check_matmul(test_tensor({5}, 1), test_tensor({5, 3}, 2));              // (K) x (K, N) -> (N)
  check_matmul(test_tensor({4, 5}, 1), test_tensor({5}, 2));              // (M, K) x (K) -> (M)
  check_matmul(test_tensor({5}, 1), test_tensor({2, 3, 5, 4}, 2));        // (K) x batched -> (2, 3, 4)
  check_matmul(test_tensor({2, 3, 4, 5}, 1), test_tensor({5}, 2));        // batched x (K) -> (2, 3, 4)
  check_matmul(test_tensor({1, 1}, 1), test_tensor({1, 1}, 2));
  check_matmul(test_tensor({13, 37}, 1), test_tensor({37, 29}, 2));
  check_matmul(test_tensor({3, 13, 37}, 1), test_tensor({37, 29}, 2));    // stacked rows: one GEMM
  check_matmul(test_tensor({13, 37}, 1), test_tensor({3, 37, 29}, 2));    // A broadcast
  check_matmul(test_tensor({4, 7, 9}, 1), test_tensor({4, 9, 6}, 2));     // plain batch
  check_matmul(test_tensor({2, 1, 7, 9}, 1), test_tensor({3, 9, 6}, 2));  // (2,1) x (3) -> (2,3)
  check_matmul(test_tensor({1, 3, 7, 9}, 1), test_tensor({2, 1, 9, 6}, 2));
  check_matmul(test_tensor({200, 70}, 1), test_tensor({70, 150}, 2), 1e-5, 1e-4);
}

TEST_CASE("matmul: transposed, strided and broadcast-expanded inputs") {
  using test::test_noncontiguous;
  using test::test_tensor;
  // test_noncontiguous gives a transposed view (last two strides (1, ld)): goes to GEMM as is
  check_matmul(test_noncontiguous({13, 37}, 1), test_tensor({37, 29}, 2));
  check_matmul(test_tensor({13, 37}, 1), test_noncontiguous({37, 29}, 2));
  check_matmul(test_noncontiguous({13, 37}, 1), test_noncontiguous({37, 29}, 2));
  check_matmul(test_noncontiguous({3, 13, 37}, 1), test_tensor({37, 29}, 2));   // cannot stack: per batch
  check_matmul(test_tensor({3, 13, 37}, 1), test_noncontiguous({37, 29}, 2));
  check_matmul(test_noncontiguous({2, 3, 5, 4}, 1), test_noncontiguous({2, 3, 4, 6}, 2));
  check_matmul(test_tensor({6, 8}, 1).t(), test_tensor({6, 5}, 2));
  // last dim strided by 2: copied first
  check_matmul(strided_last({9, 11}, 1), test_tensor({11, 4}, 2));
  check_matmul(test_tensor({9, 11}, 1), strided_last({11, 4}, 2));
  check_matmul(strided_last({2, 9, 11}, 1), strided_last({2, 11, 4}, 2));
  // batch dims that are views: a slice along the batch, an expanded batch
  check_matmul(test_tensor({6, 5, 4}, 1).slice(0, 1, 6, 2), test_tensor({3, 4, 2}, 2));
  check_matmul(test_tensor({1, 5, 4}, 1).expand({3, 5, 4}), test_tensor({3, 4, 2}, 2));
  check_matmul(test_tensor({5, 4}, 1), test_tensor({4, 1}, 2).expand({4, 3}));  // column stride 0
  // a (B, N, C) view that is a slice of a larger buffer along N still stacks into rows
  check_matmul(test_tensor({2, 7, 5}, 1).narrow(1, 1, 4), test_tensor({5, 3}, 2));
}

TEST_CASE("matmul: empty dims") {
  Tensor z = matmul(zeros({3, 0}), zeros({0, 4}));  // K = 0: all zeros
  CHECK(z.shape() == Shape{3, 4});
  CHECK(z.to_vector<float>() == std::vector<float>(12, 0.0f));
  CHECK(matmul(zeros({0, 5}), zeros({5, 4})).shape() == Shape{0, 4});
  CHECK(matmul(zeros({2, 0, 3, 5}), zeros({5, 4})).shape() == Shape{2, 0, 3, 4});
  CHECK(matmul(zeros({0}), zeros({0})).item() == 0.0);
  // gradients of empty products: zeros of the input shapes
  Tensor a = zeros({2, 0, 3}).requires_grad_(), b = ones({3, 4}).requires_grad_();
  sum(matmul(a, b)).backward();
  CHECK(a.grad().shape() == Shape{2, 0, 3});
  CHECK(b.grad().to_vector<float>() == std::vector<float>(12, 0.0f));
  Tensor c = ones({3, 0}).requires_grad_(), d = ones({0, 2}).requires_grad_();
  sum(matmul(c, d)).backward();
  CHECK(c.grad().shape() == Shape{3, 0});
  CHECK(d.grad().shape() == Shape{0, 2});
}

TEST_CASE("matmul: f64, bf16 and mixed dtypes") {
  using test::test_tensor;
  Tensor a = test_tensor({6, 50}, 1, DType::f64), b = test_tensor({50, 7}, 2, DType::f64);
  Tensor c = matmul(a, b);
  CHECK(c.dtype() == DType::f64);
  RV_EXPECT_CLOSE(c, ref_matmul(a, b), .rtol = 1e-12, .atol = 1e-12);
  Tensor ah = a.to(DType::bf16), bh = b.to(DType::bf16);
  Tensor ch = matmul(ah, bh);  // computed in f32 from the bf16 values, rounded once
  CHECK(ch.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(ch, ref_matmul(ah, bh).to(DType::bf16), .rtol = 8e-3, .atol = 1e-3);
  Tensor af = a.to(DType::f16), bf = b.to(DType::f16);
  Tensor cf = matmul(af, bf);
  CHECK(cf.dtype() == DType::f16);
  RV_EXPECT_CLOSE(cf, ref_matmul(af, bf).to(DType::f16), .rtol = 2e-3, .atol = 1e-3);
  Tensor cm = matmul(a.to(DType::f32), b);
  CHECK(cm.dtype() == DType::f64);
}

TEST_CASE("matmul: gradients of a small case by hand, and of the broadcast batch") {
  // a (2, 3), b (3, 2), loss = sum(a·b) -> dA = row sums of B repeated, dB = column sums of A
  Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = from_vector(std::vector<float>{1, -1, 2, 0, 0.5, 3}, {3, 2}).requires_grad_();
  sum(matmul(a, b)).backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{0, 2, 3.5, 0, 2, 3.5});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{5, 5, 7, 7, 9, 9});
  // b shared by a batch of 3 copies of a: its gradient is 3 times the single one
  Tensor a3 = test::test_tensor({4, 3}, 5).expand({3, 4, 3}).contiguous().detach();
  Tensor w = test::test_tensor({3, 2}, 6).requires_grad_();
  sum(matmul(a3, w)).backward();
  Tensor w1 = test::test_tensor({3, 2}, 6).requires_grad_();
  sum(matmul(test::test_tensor({4, 3}, 5), w1)).backward();
  RV_EXPECT_CLOSE(w.grad(), w1.grad() * 3.0, .rtol = 1e-6, .atol = 1e-6);
  // only the input that needs a gradient gets one
  Tensor c = test::test_tensor({4, 3}, 7);
  Tensor d = test::test_tensor({3, 5}, 8).requires_grad_();
  sum(matmul(c, d)).backward();
  CHECK(!c.grad().defined());
  CHECK(d.grad().shape() == Shape{3, 5});
}

TEST_CASE("matmul: errors name both shapes") {
  CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), doctest::Contains("[2, 3] and [4, 5]"));
  CHECK_THROWS_WITH(matmul(zeros({3}), zeros({4})), doctest::Contains("[3] and [4]"));
  CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), doctest::Contains("[2, 2, 3] and [3, 3, 4]"));
  CHECK_THROWS_WITH(matmul(scalar_tensor(1.0), zeros({3})), doctest::Contains("at least 1 dimension"));
  CHECK_THROWS_WITH(matmul(zeros({2, 3}, DType::i64), zeros({3, 2})), doctest::Contains("matmul: expected float"));
}

TEST_CASE("linear: 3-D x, bias, no bias, transposed weight, gradients") {
  using test::test_tensor;
  Tensor x = test_tensor({2, 5, 7}, 1), w = test_tensor({3, 7}, 2), bias = test_tensor({3}, 3);
  Tensor y = linear(x, w, bias);
  CHECK(y.shape() == Shape{2, 5, 3});
  Tensor ref = ref_matmul(x, w.t()) + bias.to(DType::f64);
  RV_EXPECT_CLOSE(y, ref, .rtol = 1e-5, .atol = 1e-5);
  RV_EXPECT_CLOSE(linear(x, w), ref_matmul(x, w.t()), .rtol = 1e-5, .atol = 1e-5);
  // a weight that is itself a transposed view, and a non-contiguous x
  Tensor wt = test::test_noncontiguous({3, 7}, 2);
  RV_EXPECT_CLOSE(linear(test::test_noncontiguous({5, 7}, 4), wt, bias),
                  ref_matmul(test_tensor({5, 7}, 4), w.t()) + bias.to(DType::f64), .rtol = 1e-5, .atol = 1e-5);
  RV_EXPECT_CLOSE(linear(test_tensor({7}, 5), w, bias), ref_matmul(test_tensor({7}, 5), w.t()) + bias.to(DType::f64),
                  .rtol = 1e-5, .atol = 1e-5);
  // in_features = 0: the output is the bias
  RV_EXPECT_CLOSE(linear(zeros({4, 0}), zeros({3, 0}), bias), bias.expand({4, 3}), .rtol = 0, .atol = 1e-30);
  // gradients equal those of matmul + add
  Tensor x1 = x.detach().requires_grad_(), w1 = w.detach().requires_grad_(), b1 = bias.detach().requires_grad_();
  Tensor g = test_tensor({2, 5, 3}, 9);
  sum(linear(x1, w1, b1) * g).backward();
  Tensor x2 = x.detach().requires_grad_(), w2 = w.detach().requires_grad_(), b2 = bias.detach().requires_grad_();
  sum((matmul(x2, w2.t()) + b2) * g).backward();
  RV_EXPECT_CLOSE(x1.grad(), x2.grad(), .rtol = 1e-5, .atol = 1e-6);
  RV_EXPECT_CLOSE(w1.grad(), w2.grad(), .rtol = 1e-5, .atol = 1e-6);
  RV_EXPECT_CLOSE(b1.grad(), b2.grad(), .rtol = 1e-5, .atol = 1e-6);
}

TEST_CASE("linear with bias: many rows and many outputs, contiguous and transposed x, f32 and f64") {
  // The bias is preloaded into every output row before the GEMM adds x·Wᵀ (beta = 1): a
  // transposed x view (read through the GEMM's transpose flag) and a wide output must still put
  // every row's bias and product in place.
  using test::test_tensor;
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor w = test_tensor({1000, 9}, 21, dt), bias = test_tensor({1000}, 22, dt);
    Tensor x = test_tensor({150, 9}, 23, dt), xt = test_tensor({9, 150}, 24, dt).t();
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    RV_EXPECT_CLOSE(linear(x, w, bias), ref_matmul(x, w.t()) + bias.to(DType::f64), .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(linear(xt, w, bias), ref_matmul(xt.contiguous(), w.t()) + bias.to(DType::f64), .rtol = tol,
                    .atol = tol);
  }
}

TEST_CASE("linear: bf16 and errors") {
  using test::test_tensor;
  Tensor x = test_tensor({4, 8}, 1, DType::bf16), w = test_tensor({3, 8}, 2, DType::bf16);
  Tensor y = linear(x, w);
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, ref_matmul(x, w.t()).to(DType::bf16), .rtol = 8e-3, .atol = 1e-3);
  CHECK_THROWS_WITH(linear(zeros({4, 5}), zeros({3, 6})), doctest::Contains("linear: input shape [4, 5]"));
  CHECK_THROWS_WITH(linear(zeros({4, 5}), zeros({3, 6})), doctest::Contains("[3, 6]"));
  CHECK_THROWS_WITH(linear(zeros({4, 5}), zeros({5})), doctest::Contains("weight must be 2-D"));
  CHECK_THROWS_WITH(linear(zeros({4, 5}), zeros({3, 5}), zeros({4})), doctest::Contains("bias must have shape [3]"));
}
