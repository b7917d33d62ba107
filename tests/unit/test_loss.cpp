// Losses against plain reference loops written here, against PyTorch values pasted as literals,
// and their edge cases (ignored targets, empty batches, huge logits) and error messages.
//
// The PyTorch literals were made with python3 + torch 2.x in float64, inputs rounded to two
// decimals so the literals below rebuild them exactly. The script (abridged):
//   r = lambda shape, seed, scale=2.0: ((torch.rand(shape, generator=torch.Generator().manual_seed(seed),
//                                        dtype=torch.float64) * 2 - 1) * scale).mul(100).round().div(100)
//   F.cross_entropy(x, y, weight=w, ignore_index=..., label_smoothing=..., reduction=...), .backward()
//   F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=...), .backward()
//   F.smooth_l1_loss(x, t, beta=0.5, reduction=...), .backward()
// with the exact inputs printed next to each case.
#include <cmath>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, DType::f64); }

// Deterministic class indices in [0, K), with every `ignore_every`-th one set to `ignore`.
Tensor make_targets(const Shape& shape, int64_t K, uint64_t seed, int64_t ignore_every = 0, int64_t ignore = -100) {
  std::vector<int64_t> v(size_t(shape_numel(shape)));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < v.size(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = int64_t((s >> 33) % uint64_t(K));
    if (ignore_every > 0 && i % size_t(ignore_every) == 1) v[i] = ignore;
  }
  return from_vector(v, shape);
}

// Cross entropy written the slow, obvious way, following PyTorch's definition term by term:
// log_softmax, weighted NLL, and the smoothing term -sum_c w_c logp_c, both divided by the
// summed target weight under mean. Logits as (B, K, S) row-major doubles.
struct RefCe {
  std::vector<double> per_pos;  // (B, S)
  double sum = 0, denom = 0;
};

RefCe ref_ce(const std::vector<double>& x, int64_t B, int64_t K, int64_t S, const std::vector<int64_t>* y,
             const std::vector<double>* soft, const std::vector<double>* w, int64_t ignore, double eps) {
  RefCe r;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      auto at = [&](int64_t c) { return x[size_t((b * K + c) * S + s)]; };
      double m = -INFINITY;
      for (int64_t c = 0; c < K; ++c) m = std::max(m, at(c));
      double se = 0;
      for (int64_t c = 0; c < K; ++c) se += std::exp(at(c) - m);
      const double lse = m + std::log(se);
      auto wc = [&](int64_t c) { return w ? (*w)[size_t(c)] : 1.0; };
      double loss = 0;
      if (soft) {
        for (int64_t c = 0; c < K; ++c) {
          const double t = (*soft)[size_t((b * K + c) * S + s)] * (1 - eps) + eps / double(K);
          loss -= wc(c) * t * (at(c) - lse);
        }
        r.denom += 1;
      } else {
        const int64_t t = (*y)[size_t(b * S + s)];
        if (t != ignore) {
          double smooth = 0;
          for (int64_t c = 0; c < K; ++c) smooth -= wc(c) * (at(c) - lse);
          loss = (1 - eps) * -wc(t) * (at(t) - lse) + eps / double(K) * smooth;
          r.denom += wc(t);
        }
      }
      r.per_pos.push_back(loss);
      r.sum += loss;
    }
  return r;
}

Shape without_dim1(const Shape& s) {
  Shape o = s;
  o.erase(o.begin() + 1);
  return o;
}

// Runs cross_entropy with all three reductions and checks them against ref_ce.
void check_ce_against_ref(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& base,
                          test::Tol tol) {
  const Shape& xs = logits.shape();
  const int64_t B = xs[0], K = xs[1], S = shape_numel(xs) / std::max<int64_t>(1, B * K);
  const bool soft = is_floating(target.dtype());
  std::vector<double> x = logits.to_double_vector(), t = soft ? target.to_double_vector() : std::vector<double>{};
  std::vector<int64_t> y;
  if (!soft)
    for (double v : target.to_double_vector()) y.push_back(int64_t(v));
  std::vector<double> w = base.weight.defined() ? base.weight.to_double_vector() : std::vector<double>{};
  RefCe r = ref_ce(x, B, K, S, soft ? nullptr : &y, soft ? &t : nullptr, base.weight.defined() ? &w : nullptr,
                   base.ignore_index, base.label_smoothing);
  CrossEntropyOptions o = base;
  o.reduction = Reduction::none;
  RV_EXPECT_CLOSE(cross_entropy(logits, target, o), f64(r.per_pos, without_dim1(xs)), tol.rtol, tol.atol);
  o.reduction = Reduction::sum;
  RV_EXPECT_CLOSE(cross_entropy(logits, target, o), f64({r.sum}, {}), tol.rtol, tol.atol);
  o.reduction = Reduction::mean;
  RV_EXPECT_CLOSE(cross_entropy(logits, target, o), f64({r.sum / r.denom}, {}), tol.rtol, tol.atol);
}

}  // namespace

// ---- cross entropy: reference loops -----------------------------------------------------------

TEST_CASE("cross_entropy with class indices matches the reference loop") {
  // K = 1000 and 9000 shrink the panels to 8 and 1 rows; 70 positions leave a partial panel
  const std::vector<Shape> shapes = {{5, 7},  {2, 4, 3, 5}, {1, 1},    {3, 6, 1},
                                     {2, 3, 7}, {1, 10, 2, 2}, {3, 1000}, {2, 9000}, {2, 3, 5, 7}};
  uint64_t seed = 1;
  for (const Shape& xs : shapes) {
    CAPTURE(shape_str(xs));
    const int64_t K = xs[1];
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = test::test_tensor(xs, seed++, dt, -4.0, 4.0);
      Tensor w = test::test_tensor({K}, seed++, dt, 0.2, 2.0);
      Tensor y = make_targets(without_dim1(xs), K, seed++, 3);
      const test::Tol tol = dt == DType::f32 ? test::Tol{1e-5, 1e-6} : test::Tol{1e-12, 1e-12};
      check_ce_against_ref(x, y, {}, tol);
      check_ce_against_ref(x, y, {.weight = w}, tol);
      check_ce_against_ref(x, y, {.label_smoothing = 0.1}, tol);
      check_ce_against_ref(x, y, {.weight = w, .label_smoothing = 0.3}, tol);
      check_ce_against_ref(x, y, {.weight = w, .label_smoothing = 1.0}, tol);
    }
  }
}

TEST_CASE("cross_entropy with soft targets matches the reference loop") {
  const std::vector<Shape> shapes = {{4, 6}, {2, 3, 2, 3}, {1, 1}, {3, 1000}, {2, 4, 70}};
  uint64_t seed = 100;
  for (const Shape& xs : shapes) {
    CAPTURE(shape_str(xs));
    Tensor x = test::test_tensor(xs, seed++, DType::f64, -3.0, 3.0);
    Tensor t = test::test_tensor(xs, seed++, DType::f64, 0.0, 1.0);  // need not sum to 1
    Tensor w = test::test_tensor({xs[1]}, seed++, DType::f64, 0.2, 2.0);
    const test::Tol tol{1e-12, 1e-12};
    check_ce_against_ref(x, t, {}, tol);
    check_ce_against_ref(x, t, {.label_smoothing = 0.1}, tol);
    check_ce_against_ref(x, t, {.weight = w, .label_smoothing = 0.25}, tol);
  }
}

TEST_CASE("cross_entropy on non-contiguous logits and a custom ignore_index") {
  Tensor x = test::test_noncontiguous({6, 9}, 7);  // class stride 6, row stride 1
  REQUIRE(!x.is_contiguous());
  Tensor y = make_targets({6}, 9, 8, 2, 255);
  check_ce_against_ref(x, y, {.ignore_index = 255, .label_smoothing = 0.2}, {1e-5, 1e-6});
  // (B, K, H, W) logits made from a permuted (B, H, W, K) buffer, as channels-last heads give
  Tensor xl = test::test_tensor({2, 3, 4, 5}, 9).permute({0, 3, 1, 2});
  REQUIRE(!xl.is_contiguous());
  Tensor yl = make_targets({2, 3, 4}, 5, 10, 4, 255);
  check_ce_against_ref(xl, yl, {.weight = test::test_tensor({5}, 11, DType::f32, 0.5, 1.5), .ignore_index = 255},
                       {1e-5, 1e-6});
}

TEST_CASE("cross_entropy accepts int32 and uint8 class indices") {
  Tensor x = test::test_tensor({4, 3}, 12);
  Tensor y = from_vector(std::vector<double>{0, 2, 1, 2}, {4}, DType::i64);
  Tensor ref = cross_entropy(x, y);
  RV_EXPECT_CLOSE(cross_entropy(x, y.to(DType::i32)), ref, 0, 0);
  RV_EXPECT_CLOSE(cross_entropy(x, y.to(DType::u8)), ref, 0, 0);
}

TEST_CASE("cross_entropy on bf16 logits computes in f32 and rounds once") {
  Tensor x = test::test_tensor({3, 5, 4}, 13, DType::bf16, -2.0, 2.0);
  Tensor y = make_targets({3, 4}, 5, 14, 5);
  Tensor out = cross_entropy(x, y, {.label_smoothing = 0.1});
  CHECK(out.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(out, cross_entropy(x.to(DType::f32), y, {.label_smoothing = 0.1}).to(DType::bf16), 0, 0);
  Tensor xr = x.detach().requires_grad_();
  cross_entropy(xr, y).backward();
  CHECK(xr.grad().dtype() == DType::bf16);
}

TEST_CASE("cross_entropy stays finite for huge logits") {
  // lse = 1e4 + log(1 + e^-1 + e^-2): naive exp overflows, the stable form does not
  Tensor x = f64({1e4, 1e4 - 1, 1e4 - 2, -1e4, 0, 1e4}, {2, 3}).requires_grad_();
  Tensor y = from_vector(std::vector<int64_t>{1, 0}, {2});
  Tensor loss = cross_entropy(x, y, {.reduction = Reduction::none});
  const double l0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)) + 1.0;
  const double l1 = 1e4 + 1e4 + std::log1p(std::exp(-1e4 - 1e4) + std::exp(-1e4));  // target is -1e4
  RV_EXPECT_CLOSE(loss, f64({l0, l1}, {2}), 1e-12, 1e-12);
  sum(loss).backward();
  for (double g : x.grad().to_double_vector()) CHECK(std::isfinite(g));
  Tensor xf = full({2, 3}, 3e38f);  // f32 near its max
  CHECK(std::isfinite(cross_entropy(xf, y).item()));
}

// ---- cross entropy: PyTorch literals ------------------------------------------------------------

TEST_CASE("cross_entropy matches PyTorch: weights, ignore_index -100, smoothing 0.1") {
  // x = r((3, 4), 1); y = [2, -100, 0]; w = [0.5, 1, 2, 1.5]; label_smoothing = 0.1
  Tensor x = f64({-1.76, -1.1, -1.06, -1.29, 0.22, -1.56, -0.16, 0.83, 0.32, -0.01, 0.04, -0.68}, {3, 4})
                 .requires_grad_();
  Tensor y = from_vector(std::vector<int64_t>{2, -100, 0}, {3});
  CrossEntropyOptions o{.weight = f64({0.5, 1.0, 2.0, 1.5}, {4}), .label_smoothing = 0.1};
  o.reduction = Reduction::none;
  RV_EXPECT_CLOSE(cross_entropy(x, y, o), f64({2.2884158639206733, 0.0, 0.6604608510151299}, {3}), 1e-12, 1e-13);
  o.reduction = Reduction::sum;
  RV_EXPECT_CLOSE(cross_entropy(x, y, o), f64({2.9488767149358033}, {}), 1e-12, 1e-13);
  o.reduction = Reduction::mean;
  Tensor loss = cross_entropy(x, y, o);
  RV_EXPECT_CLOSE(loss, f64({1.1795506859743212}, {}), 1e-12, 1e-13);
  loss.backward();
  RV_EXPECT_CLOSE(x.grad(),
                  f64({0.11258347508617057, 0.21749960624907508, -0.5032159586914366, 0.17313287735619107, 0.0, 0.0,
                       0.0, 0.0, -0.10408778630457237, 0.04816971075015864, 0.041152135596195474,
                       0.014765939958218227},
                      {3, 4}),
                  1e-11, 1e-13);
}

TEST_CASE("cross_entropy matches PyTorch: (B, K, H, W) segmentation, ignore_index 255, weights, smoothing") {
  // x = r((2, 3, 2, 3), 2); w = [1, 0.25, 3]; ignore_index = 255; label_smoothing = 0.2
  Tensor x = f64({1.67,  -1.61, 0.84,  0.16,  1.65, 0.1,   -1.52, -0.93, 0.77,  -0.15, -1.67, 0.73,
                  0.48,  1.23,  0.93,  -0.53, 1.77, -1.21, 1.03,  -1.54, 0.98,  0.83,  1.18,  0.78,
                  -0.31, -1.46, 1.49,  -1.9,  -1.25, -0.22, -1.88, -1.32, 0.21,  -0.69, 0.9,   -0.58},
                 {2, 3, 2, 3})
                 .requires_grad_();
  Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 255, 2, 1, 1, 1, 255, 0, 2, 0}, {2, 2, 3});
  CrossEntropyOptions o{.weight = f64({1.0, 0.25, 3.0}, {3}), .ignore_index = 255, .label_smoothing = 0.2};
  o.reduction = Reduction::none;
  RV_EXPECT_CLOSE(cross_entropy(x, y, o),
                  f64({0.612576786031324, 0.7347654706540332, 2.7387687250519144, 0.0, 1.814320511794018,
                       0.6796834502408804, 1.0051731629684104, 0.5200109298472889, 0.0, 0.6202538199905759,
                       2.4102701778111566, 0.814326902474686},
                      {2, 2, 3}),
                  1e-12, 1e-13);
  o.reduction = Reduction::mean;
  Tensor loss = cross_entropy(x, y, o);
  RV_EXPECT_CLOSE(loss, f64({0.9192423028357144}, {}), 1e-12, 1e-13);
  loss.backward();
  RV_EXPECT_CLOSE(
      x.grad(),
      f64({-0.004726902619204201, -0.003277525816434481, 0.06307123705978906,   0.0,
           0.09027090592023915,   0.006684441911058508,  0.0012681246893071505, -0.013013651983663017,
           0.06230668713506749,   0.0,                   0.0021668967291687143, 0.005512884383370356,
           0.003458777929897034,  0.016291177800097496,  -0.12537792419485655,  0.0,
           -0.09243780264940786,  -0.012197326294428868, 0.02311678672810033,   0.006038939537358873,
           0.0,                   -0.0017618377702382493, 0.10681883533582619,  -0.015370101396331602,
           -0.009270837890006503, -0.004569443267605784, 0.0,                   0.0029509955546051375,
           0.00857341157737273,   0.017588900483613994,  -0.013845948838093822, -0.001469496269753085,
           0.0,                   -0.0011891577843668925, -0.11539224691319892, -0.002218799087282398},
          {2, 3, 2, 3}),
      1e-11, 1e-13);
}

TEST_CASE("cross_entropy matches PyTorch: soft targets with smoothing and weights, both gradients") {
  // x = r((3, 5), 3); t = softmax(2 r((3, 5), 4), 1) rounded to 3 decimals; w = [1, 2, 0.5, 1, 1.5]
  Tensor x = f64({-1.86, -0.85, 1.09, -1.3, 1.02, 0.43, -1.21, -0.27, -0.38, 1.11, -1.25, 0.38, -0.21, -0.63, 1.88},
                 {3, 5})
                 .requires_grad_();
  Tensor t = f64({0.011, 0.083, 0.0, 0.444, 0.462, 0.142, 0.045, 0.745, 0.004, 0.064, 0.004, 0.896, 0.024, 0.001,
                  0.075},
                 {3, 5})
                 .requires_grad_();
  CrossEntropyOptions o{.weight = f64({1.0, 2.0, 0.5, 1.0, 1.5}, {5}), .label_smoothing = 0.1};
  RV_EXPECT_CLOSE(cross_entropy(x, t, o), f64({2.450870006296277}, {}), 1e-12, 1e-13);
  o.reduction = Reduction::sum;
  Tensor loss = cross_entropy(x, t, o);
  RV_EXPECT_CLOSE(loss, f64({7.352610018888831}, {}), 1e-12, 1e-13);
  loss.backward();
  RV_EXPECT_CLOSE(x.grad(),
                  f64({0.0008097470796732226, -0.10508328724713639, 0.5767390067099338, -0.3658372902965676,
                       -0.10662817624590316, 0.03569835494599655, -0.0854049813472665, -0.2541274136639184,
                       0.0580307233363669, 0.24580331672882144, 0.031332277000805216, -1.372432540183934,
                       0.134615332727751, 0.0812151501192677, 1.1252697803361098},
                      {3, 5}),
                  1e-11, 1e-13);
  RV_EXPECT_CLOSE(t.grad(),
                  f64({3.372783702712156, 4.927567405424312, 0.3588918513560778, 2.868783702712156,
                       1.1711755540682336, 1.2719276786017863, 5.495855357203572, 0.9509638393008931,
                       2.000927678601786, 0.9898915179026794, 3.1648395651431134, 3.395679130286227,
                       1.1144197825715567, 2.606839565143113, 0.5217593477146703},
                      {3, 5}),
                  1e-11, 1e-13);
}

// ---- cross entropy: edge cases and errors ------------------------------------------------------

TEST_CASE("cross_entropy: an all-ignored batch gives NaN under mean, 0 under sum, and zero gradients (as PyTorch)") {
  Tensor x = test::test_tensor({3, 4}, 20, DType::f64).requires_grad_();
  Tensor y = full({3}, -100, DType::i64);
  CHECK(std::isnan(cross_entropy(x, y).item()));
  CHECK(std::isnan(cross_entropy(x, y, {.label_smoothing = 0.1}).item()));
  CHECK(std::isnan(cross_entropy(x, y, {.weight = ones({4}, DType::f64)}).item()));
  Tensor m = cross_entropy(x, y, {.label_smoothing = 0.1});  // PyTorch: NaN loss, zero gradient
  m.backward();
  for (double g : x.grad().to_double_vector()) CHECK(g == 0.0);
  x.zero_grad();
  Tensor s = cross_entropy(x, y, {.label_smoothing = 0.1, .reduction = Reduction::sum});
  CHECK(s.item() == 0.0);
  s.backward();
  for (double g : x.grad().to_double_vector()) CHECK(g == 0.0);
  RV_EXPECT_CLOSE(cross_entropy(x, y, {.reduction = Reduction::none}), zeros({3}, DType::f64), 0, 0);
}

TEST_CASE("cross_entropy on empty batches and unbatched logits") {
  Tensor e = zeros({0, 5});
  CHECK(std::isnan(cross_entropy(e, zeros({0}, DType::i64)).item()));
  CHECK(std::isnan(cross_entropy(e, zeros({0, 5})).item()));
  CHECK(cross_entropy(e, zeros({0}, DType::i64), {.reduction = Reduction::sum}).item() == 0.0);
  CHECK(cross_entropy(e, zeros({0}, DType::i64), {.reduction = Reduction::none}).shape() == Shape{0});
  CHECK(cross_entropy(zeros({2, 3, 0}), zeros({2, 0}, DType::i64), {.reduction = Reduction::none}).shape() ==
        Shape{2, 0});
  // (K) logits with a () target: the same as a batch of one
  Tensor x = test::test_tensor({6}, 21, DType::f64);
  Tensor y = from_vector(std::vector<int64_t>{4}, {});
  Tensor one = cross_entropy(x.unsqueeze(0), y.unsqueeze(0), {.reduction = Reduction::none});
  Tensor un = cross_entropy(x, y, {.reduction = Reduction::none});
  CHECK(un.shape() == Shape{});
  CHECK(un.item() == one.item());
  CHECK(cross_entropy(x, y).item() == one.item());
}

TEST_CASE("cross_entropy error messages name the op and what was expected") {
  Tensor x = zeros({3, 5});
  CHECK_THROWS_WITH_AS(cross_entropy(x, from_vector(std::vector<int64_t>{0, 7, 1}, {3})),
                       doctest::Contains("target index 7 at flat position 1 is out of range for 5 classes"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(cross_entropy(x, from_vector(std::vector<int64_t>{0, -1, 1}, {3})),
                       doctest::Contains("target index -1"), std::out_of_range);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({2}, DType::i64)),
                       doctest::Contains("class-index targets must have shape [3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({3, 4})), doctest::Contains("soft (float) targets must have"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({3}, DType::i64), {.weight = ones({4})}),
                       doctest::Contains("expected weight of shape [5]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({3}, DType::i64), {.label_smoothing = 1.5}),
                       doctest::Contains("label_smoothing must be in [0, 1]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({3, 5}, DType::i64), zeros({3}, DType::i64)),
                       doctest::Contains("cross_entropy: expected logits to be a float tensor, got int64"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({3}, DType::boolean)), doctest::Contains("got bool"),
                       std::invalid_argument);
  Tensor w = ones({5}).requires_grad_();
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({3}, DType::i64), {.weight = w}),
                       doctest::Contains("not differentiable with respect to weight"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({5}), zeros({2}, DType::i64)),
                       doctest::Contains("unbatched logits [5] expect a target of shape []"), std::invalid_argument);
  CHECK_THROWS_AS(parse_reduction("avg"), std::invalid_argument);
  CHECK(parse_reduction("sum") == Reduction::sum);
}

TEST_CASE("losses do not depend on the thread count") {
#ifdef _OPENMP
  Tensor x = test::test_tensor({64, 10, 9, 8}, 30);  // 4608 positions: several panels and sum blocks
  Tensor y = make_targets({64, 9, 8}, 10, 31, 7);
  Tensor xb = test::test_tensor({300, 40}, 32, DType::f32, -5.0, 5.0), tb = test::test_tensor({300, 40}, 33);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor xr = x.detach().requires_grad_();
    Tensor l = cross_entropy(xr, y, {.label_smoothing = 0.1});
    l.backward();
    std::vector<Tensor> r = {l, xr.grad(), binary_cross_entropy_with_logits(xb, tb), mse_loss(xb, tb),
                             smooth_l1_loss(xb, tb, Reduction::sum)};
    return r;
  };
  const int saved = omp_get_max_threads();
  auto one = run(1), two = run(2), three = run(3);
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) {
    RV_EXPECT_CLOSE(two[i], one[i], 0, 0);
    RV_EXPECT_CLOSE(three[i], one[i], 0, 0);
  }
#else
  MESSAGE("built without OpenMP: one thread only");
#endif
}

// ---- binary cross entropy with logits -----------------------------------------------------------

namespace {

double ref_bce(double x, double t, double w, double p) {
  const double sig = 1.0 / (1.0 + std::exp(-x));
  return -w * (p * t * std::log(sig) + (1 - t) * std::log(1 - sig));
}

}  // namespace

TEST_CASE("binary_cross_entropy_with_logits matches the textbook formula") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = test::test_tensor({4, 3, 5}, 40, dt, -6.0, 6.0);
    Tensor t = test::test_tensor({4, 3, 5}, 41, dt, 0.0, 1.0);
    Tensor w = test::test_tensor({3, 1}, 42, dt, 0.0, 2.0);   // broadcast over dims 0 and 2
    Tensor p = test::test_tensor({5}, 43, dt, 0.5, 3.0);      // one per class (last dim)
    std::vector<double> xv = x.to_double_vector(), tv = t.to_double_vector(), wv = w.to_double_vector(),
                        pv = p.to_double_vector();
    std::vector<double> plain, weighted;
    for (int64_t i = 0; i < 60; ++i) {
      plain.push_back(ref_bce(xv[i], tv[i], 1, 1));
      weighted.push_back(ref_bce(xv[i], tv[i], wv[(i / 5) % 3], pv[i % 5]));
    }
    const double rtol = dt == DType::f32 ? 2e-5 : 1e-11, atol = dt == DType::f32 ? 1e-6 : 1e-12;
    RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(x, t, {}, {}, Reduction::none), f64(plain, {4, 3, 5}), rtol,
                    atol);
    RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(x, t, w, p, Reduction::none), f64(weighted, {4, 3, 5}), rtol,
                    atol);
    double s = 0;
    for (double v : weighted) s += v;
    RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(x, t, w, p, Reduction::sum), f64({s}, {}), rtol, atol);
    RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(x, t, w, p), f64({s / 60}, {}), rtol, atol);
    // non-contiguous operands give the same values as their contiguous copies
    Tensor xn = test::test_noncontiguous({4, 3, 5}, 44, dt), tn = test::test_noncontiguous({4, 3, 5}, 45, dt);
    REQUIRE(!xn.is_contiguous());
    RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(xn, tn, w, p, Reduction::none),
                    binary_cross_entropy_with_logits(xn.contiguous(), tn.contiguous(), w, p, Reduction::none), 0,
                    0);
  }
}

TEST_CASE("binary_cross_entropy_with_logits matches PyTorch: weight (2, 1), pos_weight (3), both gradients") {
  // x = r((2, 3), 5, 4.0); t = |r((2, 3), 6)| / 2; w = [[0.5], [2]]; pw = [1, 3, 0.25]
  Tensor x = f64({1.14, -1.92, -1.11, -1.48, -1.87, 2.81}, {2, 3}).requires_grad_();
  Tensor t = f64({0.155, 0.79, 0.755, 0.21, 0.04, 0.335}, {2, 3}).requires_grad_();
  Tensor w = f64({0.5, 2.0}, {2, 1}), pw = f64({1.0, 3.0, 0.25}, {3});
  RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(x, t, w, pw, Reduction::none),
                  f64({0.6203973112569774, 2.451681176353129, 0.16653250363862426, 1.0317834883175228,
                       0.758417254720738, 3.8248472620180096},
                      {2, 3}),
                  1e-12, 1e-13);
  Tensor loss = binary_cross_entropy_with_logits(x, t, w, pw);
  RV_EXPECT_CLOSE(loss, f64({1.4756098327175}, {}), 1e-12, 1e-13);
  loss.backward();
  RV_EXPECT_CLOSE(x.grad(),
                  f64({0.050223303250308736, -0.17000976324139752, -0.006769666840576133, -0.008190860235672587,
                       0.008075020111956488, 0.20749378237313987},
                      {2, 3}),
                  1e-11, 1e-13);
  RV_EXPECT_CLOSE(t.grad(),
                  f64({-0.09499999999999999, 0.5028011855753397, 0.005322045060915191, 0.49333333333333335,
                       1.9655608810866474, -0.9512822362857},
                      {2, 3}),
                  1e-11, 1e-13);
  // |x| = 800 overflows exp in the naive form; PyTorch gives these exactly
  RV_EXPECT_CLOSE(binary_cross_entropy_with_logits(f64({-800, 800, 30}, {3}), f64({1, 0, 0.5}, {3}), {},
                                                   f64({2.0}, {1}), Reduction::none),
                  f64({1600.0, 800.0, 15.00000000000014}, {3}), 1e-12, 1e-13);
}

TEST_CASE("binary_cross_entropy_with_logits errors") {
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(zeros({2, 3}), zeros({3})),
                       doctest::Contains("binary_cross_entropy_with_logits: expected target of the input's shape "
                                         "[2, 3], got [3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), {}, zeros({4})),
                       doctest::Contains("expected pos_weight to broadcast to the input's shape [2, 3], got [4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}, DType::i64)),
                       doctest::Contains("expected target to be a float tensor, got int64"), std::invalid_argument);
  Tensor pw = ones({3}).requires_grad_();
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), {}, pw),
                       doctest::Contains("not differentiable with respect to pos_weight"), std::invalid_argument);
  CHECK(std::isnan(binary_cross_entropy_with_logits(zeros({0, 3}), zeros({0, 3})).item()));
}

// ---- regression losses ----------------------------------------------------------------------------

TEST_CASE("mse, l1 and smooth_l1 match reference loops, with broadcasting and every reduction") {
  Tensor x = test::test_noncontiguous({3, 4, 5}, 50, DType::f64);
  Tensor t = test::test_tensor({4, 1}, 51, DType::f64);  // broadcasts to (3, 4, 5)
  std::vector<double> xv = x.to_double_vector(), tv = t.to_double_vector();
  for (double beta : {0.0, 0.3, 1.0}) {
    std::vector<double> mse, l1, sl1;
    for (int64_t i = 0; i < 60; ++i) {
      const double d = xv[i] - tv[(i / 5) % 4], a = std::fabs(d);
      mse.push_back(d * d);
      l1.push_back(a);
      sl1.push_back(beta > 0 && a < beta ? 0.5 * d * d / beta : a - 0.5 * beta);
    }
    auto check = [&](Tensor (*fn)(const Tensor&, const Tensor&, Reduction), const std::vector<double>& ref) {
      double s = 0;
      for (double v : ref) s += v;
      RV_EXPECT_CLOSE(fn(x, t, Reduction::none), f64(ref, {3, 4, 5}), 1e-13, 1e-14);
      RV_EXPECT_CLOSE(fn(x, t, Reduction::sum), f64({s}, {}), 1e-13, 1e-14);
      RV_EXPECT_CLOSE(fn(x, t, Reduction::mean), f64({s / 60}, {}), 1e-13, 1e-14);
    };
    check(mse_loss, mse);
    check(l1_loss, l1);
    RV_EXPECT_CLOSE(smooth_l1_loss(x, t, Reduction::none, beta), f64(sl1, {3, 4, 5}), 1e-13, 1e-14);
  }
  // gradients reach both operands, summed back over the broadcast
  Tensor xr = x.detach().requires_grad_(), tr = t.detach().requires_grad_();
  mse_loss(xr, tr, Reduction::sum).backward();
  std::vector<double> gx = xr.grad().to_double_vector(), gt = tr.grad().to_double_vector();
  std::vector<double> want_gt(4, 0.0);
  for (int64_t i = 0; i < 60; ++i) {
    CHECK(gx[i] == doctest::Approx(2 * (xv[i] - tv[(i / 5) % 4])));
    want_gt[(i / 5) % 4] -= 2 * (xv[i] - tv[(i / 5) % 4]);
  }
  RV_EXPECT_CLOSE(tr.grad(), f64(want_gt, {4, 1}), 1e-12, 1e-12);
}

TEST_CASE("smooth_l1_loss matches PyTorch at beta 0.5, including both sides of the kink") {
  Tensor x = f64({0.1, -0.4, 1.0, -2.0, 0.3}, {5}).requires_grad_();
  Tensor t = f64({0.0, 0.2, 0.5, 0.0, 0.3}, {5}).requires_grad_();
  RV_EXPECT_CLOSE(smooth_l1_loss(x, t, Reduction::none, 0.5),
                  f64({0.010000000000000002, 0.3500000000000001, 0.25, 1.75, 0.0}, {5}), 1e-13, 1e-15);
  Tensor loss = smooth_l1_loss(x, t, Reduction::mean, 0.5);
  RV_EXPECT_CLOSE(loss, f64({0.4720000000000001}, {}), 1e-13, 1e-15);
  loss.backward();
  RV_EXPECT_CLOSE(x.grad(), f64({0.04000000000000001, -0.2, 0.2, -0.2, 0.0}, {5}), 1e-13, 1e-15);
  RV_EXPECT_CLOSE(t.grad(), f64({-0.04000000000000001, 0.2, -0.2, 0.2, 0.0}, {5}), 1e-13, 1e-15);
}

TEST_CASE("regression losses: l1 gradient at equality is 0, beta 0 is l1, empty mean is NaN, errors") {
  Tensor x = f64({1.0, 2.0, 3.0}, {3}).requires_grad_();
  Tensor t = f64({1.0, 1.0, 4.0}, {3});
  l1_loss(x, t, Reduction::sum).backward();
  CHECK(x.grad().to_double_vector() == std::vector<double>{0.0, 1.0, -1.0});
  RV_EXPECT_CLOSE(smooth_l1_loss(x, t, Reduction::none, 0.0), l1_loss(x, t, Reduction::none), 0, 0);
  CHECK(std::isnan(mse_loss(zeros({0}), zeros({0})).item()));
  CHECK(l1_loss(zeros({0}), zeros({0}), Reduction::sum).item() == 0.0);
  CHECK(mse_loss(zeros({2, 0}), zeros({2, 0}), Reduction::none).shape() == Shape{2, 0});
  CHECK(mse_loss(ones({2}, DType::bf16), zeros({2}, DType::bf16)).dtype() == DType::bf16);
  CHECK_THROWS_WITH_AS(smooth_l1_loss(x, t, Reduction::mean, -1.0),
                       doctest::Contains("smooth_l1_loss: beta must be >= 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(mse_loss(zeros({2, 3}), zeros({4})), doctest::Contains("mse_loss"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(l1_loss(zeros({2}, DType::i64), zeros({2})),
                       doctest::Contains("l1_loss: expected input to be a float tensor, got int64"),
                       std::invalid_argument);
}
