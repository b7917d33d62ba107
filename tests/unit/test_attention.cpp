// attention: both implementations against a plain loop in this file, fused against reference
// (outputs and every gradient) on ragged sizes, the Swin bias/mask use case, masking edge cases,
// strides, dtypes, thread-count independence and errors.
#include <cmath>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::test;

namespace {

// softmax(q k^T * scale + bias, masked -> -inf) v in double; all-masked rows give 0.
Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, const Tensor& mask,
                     double scale) {
  const int64_t B = q.size(0), NH = q.size(1), Nq = q.size(2), HD = q.size(3), Nk = k.size(2), HDv = v.size(3);
  const Shape ss = {B, NH, Nq, Nk};
  std::vector<double> qv = q.to_double_vector(), kv = k.to_double_vector(), vv = v.to_double_vector();
  std::vector<double> bv = bias.defined() ? bias.expand(ss).contiguous().to_double_vector() : std::vector<double>();
  std::vector<double> mv = mask.defined() ? mask.expand(ss).contiguous().to_double_vector() : std::vector<double>();
  std::vector<double> out(B * NH * Nq * HDv, 0.0), s(Nk);
  for (int64_t bh = 0; bh < B * NH; ++bh)
    for (int64_t i = 0; i < Nq; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < Nk; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < HD; ++d) dot += qv[(bh * Nq + i) * HD + d] * kv[(bh * Nk + j) * HD + d];
        const int64_t e = (bh * Nq + i) * Nk + j;
        s[j] = dot * scale + (bias.defined() ? bv[e] : 0.0);
        if (mask.defined() && mv[e] == 0) s[j] = -INFINITY;
        mx = std::max(mx, s[j]);
      }
      if (mx == -INFINITY) continue;
      double tot = 0;
      for (int64_t j = 0; j < Nk; ++j) tot += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < Nk; ++j)
        for (int64_t d = 0; d < HDv; ++d) out[(bh * Nq + i) * HDv + d] += s[j] / tot * vv[(bh * Nk + j) * HDv + d];
    }
  return from_vector(out, {B, NH, Nq, HDv}, DType::f64);
}

struct Case {
  int64_t B, NH, Nq, Nk, HD;
  bool with_bias, with_mask;
};

Tensor make_mask(const Shape& shape, uint64_t seed, double keep = 0.8) {
  Tensor u = test_tensor(shape, seed, DType::f64, 0.0, 1.0);
  std::vector<double> m = u.to_double_vector();
  for (auto& x : m) x = x < keep ? 1.0 : 0.0;
  return from_vector(m, shape, DType::boolean);
}

// Runs one implementation with gradients; returns {out, dq, dk, dv, dbias}.
std::vector<Tensor> run(AttentionImpl impl, const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& b0,
                        const Tensor& mask, const Tensor& gout) {
  Tensor q = q0.detach().clone().requires_grad_(), k = k0.detach().clone().requires_grad_();
  Tensor v = v0.detach().clone().requires_grad_();
  Tensor b = b0.defined() ? b0.detach().clone().requires_grad_() : Tensor();
  Tensor out = scaled_dot_product_attention(q, k, v, b, mask, std::nullopt, impl);
  out.backward(gout);
  return {out, q.grad(), k.grad(), v.grad(), b.defined() ? b.grad() : Tensor()};
}

}  // namespace

TEST_CASE("attention: both implementations match the plain loop and each other on ragged sizes") {
  const std::vector<Case> cases = {
      {2, 3, 197, 197, 64, false, false},  // ViT-S/16 at 224
      {3, 2, 49, 49, 32, true, true},      // a Swin window
      {1, 2, 50, 50, 64, true, false},
      {2, 2, 1, 1, 32, false, false},
      {1, 1, 65, 129, 32, true, true},  // one past the 64-wide tiles, cross attention
      {2, 1, 3, 130, 64, false, true},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.Nq);
    CAPTURE(c.Nk);
    CAPTURE(c.HD);
    Tensor q = test_tensor({c.B, c.NH, c.Nq, c.HD}, seed++, DType::f32, -2.0, 2.0);
    Tensor k = test_tensor({c.B, c.NH, c.Nk, c.HD}, seed++, DType::f32, -2.0, 2.0);
    Tensor v = test_tensor({c.B, c.NH, c.Nk, c.HD}, seed++);
    Tensor bias = c.with_bias ? test_tensor({c.NH, c.Nq, c.Nk}, seed++) : Tensor();
    Tensor mask = c.with_mask ? make_mask({c.B, 1, c.Nq, c.Nk}, seed++) : Tensor();
    Tensor gout = test_tensor({c.B, c.NH, c.Nq, c.HD}, seed++);
    Tensor expect = ref_attention(q, k, v, bias, mask, 1.0 / std::sqrt(double(c.HD)));
    auto r = run(AttentionImpl::reference, q, k, v, bias, mask, gout);
    auto f = run(AttentionImpl::fused, q, k, v, bias, mask, gout);
    RV_EXPECT_CLOSE(r[0], expect, .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(f[0], expect, .rtol = 1e-5, .atol = 1e-6);
    for (int i = 1; i < 5; ++i) {
      CAPTURE(i);
      if (!r[i].defined()) continue;
      RV_EXPECT_CLOSE(f[i], r[i], .rtol = 1e-4, .atol = 2e-6);
    }
  }
}

TEST_CASE("attention: a long sequence (N = 1025), fused against reference, outputs and gradients") {
  Tensor q = test_tensor({1, 2, 1025, 64}, 1, DType::f32, -2.0, 2.0);
  Tensor k = test_tensor({1, 2, 1025, 64}, 2, DType::f32, -2.0, 2.0);
  Tensor v = test_tensor({1, 2, 1025, 64}, 3);
  Tensor bias = test_tensor({1025, 1025}, 4);
  Tensor gout = test_tensor({1, 2, 1025, 64}, 5);
  auto r = run(AttentionImpl::reference, q, k, v, bias, Tensor(), gout);
  auto f = run(AttentionImpl::fused, q, k, v, bias, Tensor(), gout);
  RV_EXPECT_CLOSE(f[0], r[0], .rtol = 1e-4, .atol = 1e-6);
  for (int i = 1; i < 5; ++i) {
    CAPTURE(i);
    RV_EXPECT_CLOSE(f[i], r[i], .rtol = 1e-3, .atol = 1e-6);
  }
  CHECK(resolve_attention_impl(AttentionImpl::automatic, 1025, 1025) == AttentionImpl::fused);
}

TEST_CASE("attention: bias shapes broadcast, and the bias gradient sums to the bias's shape") {
  const int64_t B = 2, NH = 3, N = 70, HD = 8;
  Tensor q = test_tensor({B, NH, N, HD}, 11), k = test_tensor({B, NH, N, HD}, 12), v = test_tensor({B, NH, N, 5}, 13);
  Tensor gout = test_tensor({B, NH, N, 5}, 14);
  for (Shape bs : {Shape{B, NH, N, N}, Shape{N, N}, Shape{B, 1, 1, N}, Shape{1, NH, N, 1}, Shape{NH, 1, N}}) {
    CAPTURE(shape_str(bs));
    Tensor bias = test_tensor(bs, 15, DType::f32, -3.0, 3.0);
    Tensor expect = ref_attention(q, k, v, bias, Tensor(), 1.0 / std::sqrt(8.0));
    auto r = run(AttentionImpl::reference, q, k, v, bias, Tensor(), gout);
    auto f = run(AttentionImpl::fused, q, k, v, bias, Tensor(), gout);
    RV_EXPECT_CLOSE(r[0], expect, .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(f[0], expect, .rtol = 1e-5, .atol = 1e-6);
    CHECK(r[4].shape() == bs);
    RV_EXPECT_CLOSE(f[4], r[4], .rtol = 1e-4, .atol = 1e-6);
  }
}

TEST_CASE("attention: Swin shifted windows, relative position bias plus the -100 mask") {
  // q as (B*nW, NH, N, HD) viewed as (B, nW*NH, N, HD); bias = rpb (NH, N, N) + mask (nW, 1, N, N).
  const int64_t B = 2, nW = 4, NH = 3, N = 9, HD = 32;
  Tensor rpb = test_tensor({NH, N, N}, 21).requires_grad_();
  std::vector<double> mv(nW * N * N);
  for (int64_t w = 0; w < nW; ++w)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) mv[(w * N + i) * N + j] = (w > 0 && (i % 3 == 2) != (j % 3 == 2)) ? -100.0 : 0;
  Tensor swin_mask = from_vector(mv, {nW, 1, N, N});
  Tensor bias = add(rpb.unsqueeze(0), swin_mask).reshape({nW * NH, N, N});  // (nW*NH, N, N)
  Tensor q = test_tensor({B * nW, NH, N, HD}, 22), k = test_tensor({B * nW, NH, N, HD}, 23);
  Tensor v = test_tensor({B * nW, NH, N, HD}, 24);
  auto view = [&](const Tensor& t) { return t.reshape({B, nW * NH, N, HD}); };
  Tensor out = scaled_dot_product_attention(view(q), view(k), view(v), bias);
  Tensor expect = ref_attention(view(q), view(k), view(v), bias.detach(), Tensor(), 1.0 / std::sqrt(32.0));
  RV_EXPECT_CLOSE(out, expect, .rtol = 1e-5, .atol = 1e-6);
  sum(out).backward();
  CHECK(rpb.grad().shape() == Shape{NH, N, N});
  // the rows of a softmax sum to one, so d sum(out) / d score = P (v_j - out) summed... the rpb
  // gradient is the batch-and-window sum of dS; compare against the fused path.
  Tensor rpb2 = rpb.detach().clone().requires_grad_();
  Tensor bias2 = add(rpb2.unsqueeze(0), swin_mask).reshape({nW * NH, N, N});
  sum(scaled_dot_product_attention(view(q), view(k), view(v), bias2, Tensor(), std::nullopt, AttentionImpl::fused))
      .backward();
  RV_EXPECT_CLOSE(rpb2.grad(), rpb.grad(), .rtol = 1e-4, .atol = 1e-6);
}

TEST_CASE("attention: rows with every key masked give zeros, not NaN, in both implementations") {
  Tensor q = test_tensor({1, 2, 4, 8}, 31), k = test_tensor({1, 2, 6, 8}, 32), v = test_tensor({1, 2, 6, 8}, 33);
  std::vector<double> m(4 * 6, 1.0);
  for (int64_t j = 0; j < 6; ++j) m[2 * 6 + j] = 0;  // query 2 sees nothing
  m[0 * 6 + 3] = 0;
  Tensor mask = from_vector(m, {4, 6}, DType::boolean);
  Tensor gout = test_tensor({1, 2, 4, 8}, 34);
  Tensor bias = test_tensor({4, 6}, 35);
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    auto r = run(impl, q, k, v, bias, mask, gout);
    RV_EXPECT_CLOSE(r[0], ref_attention(q, k, v, bias, mask, 1.0 / std::sqrt(8.0)), .rtol = 1e-5, .atol = 1e-6);
    for (int i = 0; i < 5; ++i)
      for (double x : r[i].to_double_vector()) CHECK(std::isfinite(x));
    // q row 2 gets no gradient; bias entries of masked pairs get none either
    for (double x : r[1].select(2, 2).to_double_vector()) CHECK(x == 0.0);
    CHECK(r[4].to_double_vector()[0 * 6 + 3] == 0.0);
  }
  // no keys at all
  Tensor none = scaled_dot_product_attention(q, zeros({1, 2, 0, 8}), zeros({1, 2, 0, 8}), Tensor(), Tensor(),
                                             std::nullopt, AttentionImpl::fused);
  CHECK(none.shape() == Shape{1, 2, 4, 8});
  for (double x : none.to_double_vector()) CHECK(x == 0.0);
  CHECK(scaled_dot_product_attention(zeros({0, 2, 3, 4}), zeros({0, 2, 3, 4}), zeros({0, 2, 3, 4})).shape() ==
        Shape{0, 2, 3, 4});
}

TEST_CASE("attention: q, k, v as strided views of one qkv projection; explicit scale; HDv != HD") {
  const int64_t B = 2, N = 70, NH = 3, HD = 16;
  Tensor qkv = test_tensor({B, N, 3, NH, HD}, 41);
  Tensor p = qkv.permute({2, 0, 3, 1, 4});  // (3, B, NH, N, HD), last dim contiguous
  Tensor q = p.select(0, 0), k = p.select(0, 1), v = p.select(0, 2);
  CHECK(!q.is_contiguous());
  Tensor expect = ref_attention(q.contiguous(), k.contiguous(), v.contiguous(), Tensor(), Tensor(), 0.3);
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused})
    RV_EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), 0.3, impl), expect, .rtol = 1e-5,
                    .atol = 1e-6);
  // transposed storage (last dim not contiguous) is copied
  Tensor qn = test_noncontiguous({1, 2, 5, 6}, 42), kn = test_noncontiguous({1, 2, 7, 6}, 43);
  Tensor vn = test_noncontiguous({1, 2, 7, 3}, 44);
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused})
    RV_EXPECT_CLOSE(scaled_dot_product_attention(qn, kn, vn, Tensor(), Tensor(), std::nullopt, impl),
                    ref_attention(qn, kn, vn, Tensor(), Tensor(), 1.0 / std::sqrt(6.0)), .rtol = 1e-5, .atol = 1e-6);
}

TEST_CASE("attention: f64 to 1e-12 and bf16 rounded once") {
  Tensor q = test_tensor({2, 2, 67, 8}, 51, DType::f64), k = test_tensor({2, 2, 67, 8}, 52, DType::f64);
  Tensor v = test_tensor({2, 2, 67, 8}, 53, DType::f64);
  Tensor expect = ref_attention(q, k, v, Tensor(), Tensor(), 1.0 / std::sqrt(8.0));
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused})
    RV_EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), std::nullopt, impl), expect,
                    .rtol = 1e-12, .atol = 1e-13);
  Tensor qb = q.to(DType::bf16), kb = k.to(DType::bf16), vb = v.to(DType::bf16);
  Tensor eb = ref_attention(qb, kb, vb, Tensor(), Tensor(), 1.0 / std::sqrt(8.0));
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    Tensor out = scaled_dot_product_attention(qb, kb, vb, Tensor(), Tensor(), std::nullopt, impl);
    CHECK(out.dtype() == DType::bf16);
    RV_EXPECT_CLOSE(out, eb, .rtol = 8e-3, .atol = 1e-4);
  }
}

TEST_CASE("attention: results do not depend on the thread count") {
#ifdef _OPENMP
  Tensor q = test_tensor({2, 2, 150, 32}, 61), k = test_tensor({2, 2, 150, 32}, 62), v = test_tensor({2, 2, 150, 32}, 63);
  Tensor bias = test_tensor({150, 150}, 64), gout = test_tensor({2, 2, 150, 32}, 65);
  const int saved = omp_get_max_threads();
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    omp_set_num_threads(1);
    auto one = run(impl, q, k, v, bias, Tensor(), gout);
    omp_set_num_threads(3);
    auto three = run(impl, q, k, v, bias, Tensor(), gout);
    for (int i = 0; i < 5; ++i) CHECK(one[i].to_double_vector() == three[i].to_double_vector());
  }
  omp_set_num_threads(saved);
#endif
}

TEST_CASE("attention: automatic choice and the override") {
  CHECK(resolve_attention_impl(AttentionImpl::automatic, 9, 9) == AttentionImpl::reference);
  CHECK(resolve_attention_impl(AttentionImpl::automatic, 49, 49) == AttentionImpl::fused);
  CHECK(resolve_attention_impl(AttentionImpl::automatic, 1, kFusedMinKeys) == AttentionImpl::fused);
  CHECK(resolve_attention_impl(AttentionImpl::reference, 4096, 4096) == AttentionImpl::reference);
  set_attention_impl_override(AttentionImpl::fused);
  CHECK(resolve_attention_impl(AttentionImpl::automatic, 9, 9) == AttentionImpl::fused);
  CHECK(resolve_attention_impl(AttentionImpl::reference, 49, 49) == AttentionImpl::reference);
  set_attention_impl_override(AttentionImpl::automatic);
  CHECK(attention_impl_override() == AttentionImpl::automatic);
}

TEST_CASE("attention errors name the op and the argument") {
  Tensor q = zeros({1, 2, 3, 4}), k = zeros({1, 2, 5, 4}), v = zeros({1, 2, 5, 6});
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(zeros({2, 3, 4}), k, v),
                       doctest::Contains("scaled_dot_product_attention: expected `q` of shape"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, zeros({1, 2, 5, 3}), v), doctest::Contains("`k`"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, zeros({1, 2, 4, 6})), doctest::Contains("`v`"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v.to(DType::f64)), doctest::Contains("one dtype"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, zeros({3, 3})), doctest::Contains("`bias`"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, Tensor(), zeros({3, 5})),
                       doctest::Contains("bool tensor"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, Tensor(), zeros({2, 5}, DType::boolean)),
                       doctest::Contains("`mask`"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(zeros({1, 2, 3, 4}, DType::i32), k, v),
                       doctest::Contains("float tensor"), std::invalid_argument);
}
