// batch_norm and group_norm against plain reference loops written here, against PyTorch values
// pasted as literals (running-statistic updates over two training steps, eval mode, group
// norm, all gradients), and their edge cases and error messages.
//
// The PyTorch literals were made with python3 + torch 2.x in float64, inputs rounded to two
// decimals so the literals below rebuild them exactly:
//   r = lambda shape, seed, scale=2.0, shift=0.0: ((torch.rand(shape, generator=torch.Generator()
//        .manual_seed(seed), dtype=torch.float64) * 2 - 1) * scale + shift).mul(100).round().div(100)
//   rm, rv = zeros(3), ones(3); y1 = F.batch_norm(x1, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
//   y2 = F.batch_norm(x2, rm, rv, w, b, training=True, ...); y2.backward(gy); then training=False
//   y = F.group_norm(x, 3, w, b, eps=1e-5); y.backward(gy)
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, DType::f64); }

// Normalises x (B, C, S row-major) with statistics over the elements idx(b, c, s) maps to the
// same key; the textbook two-loop definition, in double.
struct RefNorm {
  std::vector<double> y, mean, var;  // var: biased
};

RefNorm ref_norm(const std::vector<double>& x, int64_t B, int64_t C, int64_t S, int64_t keys,
                 int64_t (*key)(int64_t b, int64_t c, int64_t C, int64_t G), int64_t G,
                 const std::vector<double>* w, const std::vector<double>* bias, double eps,
                 const std::vector<double>* fixed_mean = nullptr, const std::vector<double>* fixed_var = nullptr) {
  RefNorm r;
  r.mean.assign(keys, 0.0);
  r.var.assign(keys, 0.0);
  std::vector<double> cnt(keys, 0.0);
  auto at = [&](int64_t b, int64_t c, int64_t s) { return x[size_t((b * C + c) * S + s)]; };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        r.mean[key(b, c, C, G)] += at(b, c, s);
        cnt[key(b, c, C, G)] += 1;
      }
  for (int64_t k = 0; k < keys; ++k) r.mean[k] /= cnt[k];
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const double d = at(b, c, s) - r.mean[key(b, c, C, G)];
        r.var[key(b, c, C, G)] += d * d;
      }
  for (int64_t k = 0; k < keys; ++k) r.var[k] /= cnt[k];
  const std::vector<double>& mu = fixed_mean ? *fixed_mean : r.mean;
  const std::vector<double>& var = fixed_var ? *fixed_var : r.var;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t k = key(b, c, C, G);
        double v = (at(b, c, s) - mu[k]) / std::sqrt(var[k] + eps);
        r.y.push_back(v * (w ? (*w)[c] : 1.0) + (bias ? (*bias)[c] : 0.0));
      }
  return r;
}

int64_t channel_key(int64_t, int64_t c, int64_t, int64_t) { return c; }
int64_t group_key(int64_t b, int64_t c, int64_t C, int64_t G) { return b * G + c / (C / G); }

int64_t spatial(const Shape& s) {
  int64_t n = 1;
  for (size_t d = 2; d < s.size(); ++d) n *= s[d];
  return n;
}

}  // namespace

// ---- batch norm ---------------------------------------------------------------------------------

TEST_CASE("batch_norm in training mode matches the reference loop and updates the running stats") {
  const std::vector<Shape> shapes = {{8, 5}, {4, 3, 7}, {2, 6, 3, 5}, {3, 1, 2, 2}, {2, 4, 1}};
  uint64_t seed = 1;
  for (const Shape& xs : shapes) {
    CAPTURE(shape_str(xs));
    const int64_t B = xs[0], C = xs[1], S = spatial(xs), n = B * S;
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = test::test_tensor(xs, seed++, dt, -2.0, 3.0);
      Tensor w = test::test_tensor({C}, seed++, dt), b = test::test_tensor({C}, seed++, dt);
      Tensor rm = test::test_tensor({C}, seed++, DType::f32), rv = test::test_tensor({C}, seed++, DType::f32, 0.5, 2.0);
      std::vector<double> rm0 = rm.to_double_vector(), rv0 = rv.to_double_vector();
      std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector(), bv = b.to_double_vector();
      RefNorm r = ref_norm(xv, B, C, S, C, channel_key, 0, &wv, &bv, 1e-5);
      const double rtol = dt == DType::f32 ? 1e-5 : 1e-12, atol = dt == DType::f32 ? 1e-5 : 1e-12;
      RV_EXPECT_CLOSE(batch_norm(x, rm, rv, w, b, true, 0.2, 1e-5), f64(r.y, xs), rtol, atol);
      std::vector<double> want_rm, want_rv;
      for (int64_t c = 0; c < C; ++c) {
        want_rm.push_back(0.8 * rm0[c] + 0.2 * r.mean[c]);
        want_rv.push_back(0.8 * rv0[c] + 0.2 * r.var[c] * double(n) / double(n - 1));
      }
      RV_EXPECT_CLOSE(rm, f64(want_rm, {C}), 1e-6, 1e-6);
      RV_EXPECT_CLOSE(rv, f64(want_rv, {C}), 1e-6, 1e-6);
      // a non-contiguous input gives the same bits as its contiguous copy
      Tensor xn = test::test_noncontiguous(xs, seed++, dt);
      RV_EXPECT_CLOSE(batch_norm(xn, {}, {}, w, b, true), batch_norm(xn.contiguous(), {}, {}, w, b, true), 0, 0);
      // without affine parameters and without running buffers
      RefNorm r0 = ref_norm(xv, B, C, S, C, channel_key, 0, nullptr, nullptr, 1e-3);
      RV_EXPECT_CLOSE(batch_norm(x, {}, {}, {}, {}, true, 0.1, 1e-3), f64(r0.y, xs), rtol, atol);
    }
  }
}

TEST_CASE("batch_norm in eval mode normalises with the running stats and leaves them alone") {
  Tensor x = test::test_noncontiguous({3, 4, 5}, 10, DType::f64);
  REQUIRE(!x.is_contiguous());
  Tensor rm = test::test_tensor({4}, 11, DType::f64), rv = test::test_tensor({4}, 12, DType::f64, 0.5, 2.0);
  Tensor w = test::test_tensor({4}, 13, DType::f64), b = test::test_tensor({4}, 14, DType::f64);
  std::vector<double> rmv = rm.to_double_vector(), rvv = rv.to_double_vector(), wv = w.to_double_vector(),
                      bv = b.to_double_vector();
  RefNorm r = ref_norm(x.to_double_vector(), 3, 4, 5, 4, channel_key, 0, &wv, &bv, 1e-5, &rmv, &rvv);
  RV_EXPECT_CLOSE(batch_norm(x, rm, rv, w, b, false), f64(r.y, {3, 4, 5}), 1e-12, 1e-12);
  CHECK(rm.to_double_vector() == rmv);
  CHECK(rv.to_double_vector() == rvv);
  // eval on a single sample is fine (no batch statistics needed)
  CHECK(batch_norm(zeros({1, 4}, DType::f64), rm, rv, w, b, false).shape() == Shape{1, 4});
}

TEST_CASE("batch_norm matches PyTorch over two training steps, then in eval mode, with gradients") {
  // x1 = r((4, 3, 2), 11); x2 = r((4, 3, 2), 12, 3.0, 1.0); w = [1.5, -0.5, 2]; b = [0.1, 0.2, -0.3]
  Tensor x1 = f64({-1.23, 1.54, 0.69, 0.66, 0.31, -1.38, -1.3, -1.45, 1.28, -0.29, 1.87, 0.77,
                   0.86, -0.19, -1.61, -1.92, 1.8, -1.69, 1.68, -0.38, -0.44, 1.31, 1.16, 1.6},
                  {4, 3, 2});
  Tensor x2 = f64({2.35, 1.73, -0.39, -1.41, 3.1, 1.56, 1.98, 0.68, 2.99, -1.97, -0.32, -0.45,
                   2.64, 0.41, 1.76, 0.83, 1.44, -1.68, -1.17, -1.11, 2.92, 1.71, 3.46, -1.24},
                  {4, 3, 2})
                  .requires_grad_();
  Tensor w = f64({1.5, -0.5, 2.0}, {3}).requires_grad_(), b = f64({0.1, 0.2, -0.3}, {3}).requires_grad_();
  Tensor rm = zeros({3}, DType::f64), rv = ones({3}, DType::f64);
  Tensor gy = f64({0.94, -0.06, -1.51, 1.42, 1.55, 0.66, -0.72, -0.89, -1.9, 0.77, 1.02, -1.1,
                   1.33, -0.96, 0.42, -0.69, 1.45, 1.39, -0.89, 1.47, 0.98, -0.97, -1.55, 0.39},
                  {4, 3, 2});
  const double rt = 1e-12, at = 1e-12;

  Tensor y1 = batch_norm(x1, rm, rv, w, b, true, 0.1, 1e-5);
  RV_EXPECT_CLOSE(y1,
                  f64({-1.372266695089983, 2.109636182518771, -0.1140012949442462, -0.10109713213831831,
                       -0.6754282276171557, -3.265116818119169, -1.460257020516919, -1.6488077178603533,
                       -0.3677831634608288, 0.3075346900493994, 1.715053548230857, 0.02945742423546345,
                       1.2548730212285353, -0.06498186017550502, 0.8753178535102282, 1.0086608691714833,
                       1.607788340340241, -3.7401484530633256, 2.2856168333726425, -0.3038127434771885,
                       0.37205550407903903, -0.3806873262667567, 0.6270778681974665, 1.3013163177956242},
                      {4, 3, 2}),
                  rt, at);
  RV_EXPECT_CLOSE(rm, f64({-0.005875000000000002, -0.004000000000000001, 0.055499999999999994}, {3}), rt, at);
  RV_EXPECT_CLOSE(rv, f64({1.06274125, 1.054422857142857, 1.0946828571428573}, {3}), rt, at);

  Tensor y2 = batch_norm(x2, rm, rv, w, b, true, 0.1, 1e-5);
  RV_EXPECT_CLOSE(y2,
                  f64({1.6165592857940112, 0.9502940902636041, 0.5379019016254677, 0.826320261171892,
                       2.302855979902769, 0.6088683585397413, 1.218949411041994, -0.1780582570056336,
                       -0.41783736824405593, 0.9846675958248308, -1.4591165298774613, -1.602115484927587,
                       1.9281994578969437, -0.4682060034462948, -0.07003875820277955, 0.19293092256013672,
                       0.47686932310885594, -2.955105598094161, -2.166107630765719, -2.101630353778906,
                       -0.39804395141243853, -0.05590060332305286, 2.6988530861954247, -2.4711091348475818},
                      {4, 3, 2}),
                  rt, at);
  RV_EXPECT_CLOSE(rm, f64({0.08858750000000001, 0.07690000000000001, 0.123325}, {3}), rt, at);
  RV_EXPECT_CLOSE(rv, f64({1.1791369464285715, 1.3063234285714285, 1.3630229642857146}, {3}), rt, at);
  y2.backward(gy);
  RV_EXPECT_CLOSE(x2.grad(),
                  f64({0.7475592137784384, -0.22468454701174523, 0.45639273967950766, -0.30234056884646276,
                       1.4651722106882545, 0.3013104808901245, -0.9752158528680559, -0.9432389241902821,
                       0.33549634980027354, -0.08024353799965579, 0.4716234954105891, -1.8759652787249717,
                       1.1187752537511475, -0.9738786542867608, -0.23638858766414628, 0.14108549743656265,
                       1.155898763250192, 0.7153596889766449, -0.6377576075802078, 1.8884411184074663,
                       -0.4740737440956882, 0.16007185168960902, -1.9015867685965004, -0.33181259189433293},
                      {4, 3, 2}),
                  1e-11, 1e-12);
  RV_EXPECT_CLOSE(w.grad(), f64({1.7158657131021395, -3.421659691371932, -1.5873915253028257}, {3}), 1e-11, 1e-12);
  RV_EXPECT_CLOSE(b.grad(), f64({0.22000000000000008, -1.48, 3.8099999999999996}, {3}), 1e-11, 1e-12);

  x2.zero_grad();
  w.zero_grad();
  b.zero_grad();
  Tensor y3 = batch_norm(x2, rm, rv, w, b, false, 0.1, 1e-5);
  RV_EXPECT_CLOSE(y3,
                  f64({3.2238277756330618, 2.3673837518680485, 0.4042522541051633, 0.8504662168108101,
                       4.799272678847183, 2.1611345127979296, 2.7127240840313602, 0.9169543567821387,
                       -1.0743783281939412, 1.0954464316295967, -1.059449741859601, -1.2821497169157066,
                       3.6244225609425036, 0.5439867980457618, -0.5362967849312492, -0.1294546424643359,
                       1.9555653050538315, -3.3892340962927077, -1.6385641012263688, -1.5556824215071743,
                       -1.0437558013415928, -0.5144235514652862, 5.4159803020794755, -2.63548033456435},
                      {4, 3, 2}),
                  rt, at);
  y3.backward(gy);
  RV_EXPECT_CLOSE(x2.grad(),
                  f64({1.2984796489340524, -0.08288167971919484, 0.6605716506720851, -0.6211998304333515,
                       2.6552689333612616, 1.1306306425925372, -0.994580156630338, -1.22941158250139,
                       0.8311828717065971, -0.3368477953758315, 1.7473382658248302, -1.8843844043208955,
                       1.8372105671088192, -1.3261068755071175, -0.18373516111408988, 0.3018506218302905,
                       2.48396126024118, 2.381176656369131, -1.22941158250139, 2.0306011531202737,
                       -0.4287153759328764, 0.4243407292396838, -2.6552689333612616, 0.6680999251683175},
                      {4, 3, 2}),
                  1e-11, 1e-12);
  RV_EXPECT_CLOSE(w.grad(), f64({2.377885290899889, -6.236485826663331, -0.48006255882591914}, {3}), 1e-11, 1e-12);
  RV_EXPECT_CLOSE(b.grad(), f64({0.22000000000000008, -1.48, 3.8099999999999996}, {3}), 1e-11, 1e-12);
}

TEST_CASE("batch_norm on bf16 input with f32 parameters and buffers") {
  Tensor x = test::test_tensor({4, 3, 6}, 20, DType::bf16, -2.0, 2.0);
  Tensor w = test::test_tensor({3}, 21), b = test::test_tensor({3}, 22);
  Tensor rm = zeros({3}), rv = ones({3}), rm32 = zeros({3}), rv32 = ones({3});
  Tensor y = batch_norm(x, rm, rv, w, b, true);
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, batch_norm(x.to(DType::f32), rm32, rv32, w, b, true).to(DType::bf16), 0, 0);
  RV_EXPECT_CLOSE(rm, rm32, 0, 0);
  RV_EXPECT_CLOSE(rv, rv32, 0, 0);
}

TEST_CASE("batch_norm edge cases and errors") {
  Tensor rm = zeros({3}), rv = ones({3});
  // an empty batch gives an empty output and leaves the running stats alone (as PyTorch)
  CHECK(batch_norm(zeros({0, 3, 4}), rm, rv, {}, {}, true).shape() == Shape{0, 3, 4});
  CHECK(rm.to_double_vector() == std::vector<double>{0, 0, 0});
  CHECK(rv.to_double_vector() == std::vector<double>{1, 1, 1});
  CHECK_THROWS_WITH_AS(batch_norm(zeros({1, 3}), rm, rv, {}, {}, true),
                       doctest::Contains("batch_norm: expected more than 1 value per channel when training, got "
                                         "input of shape [1, 3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}), {}, {}, {}, {}, false),
                       doctest::Contains("running_mean and running_var are required when training is false"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}), rm, {}, {}, {}, true), doctest::Contains("must be given together"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 4}), rm, rv, {}, {}, true),
                       doctest::Contains("batch_norm: expected running_mean of shape [4] (one per channel), got [3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}), rm, rv, ones({2}), {}, true),
                       doctest::Contains("expected weight of shape [3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({3}), rm, rv, {}, {}, true),
                       doctest::Contains("batch_norm: expected input of shape (B, C) or (B, C, d1, ...), got [3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}, DType::i64), rm, rv, {}, {}, true),
                       doctest::Contains("expected a float input, got int64"), std::invalid_argument);
  Tensor rg = zeros({3}).requires_grad_();
  CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}), rg, rv, {}, {}, true), doctest::Contains("must not require grad"),
                       std::invalid_argument);
  // the in-place buffer update is visible to autograd's version check: a graph that saved the
  // buffer cannot silently use the new values
  Tensor x = test::test_tensor({4, 3}, 30, DType::f64).requires_grad_();
  Tensor rm64 = zeros({3}, DType::f64), rv64 = ones({3}, DType::f64);
  Tensor saved_use = mul(x, rm64.unsqueeze(0));  // saves rm64 for the gradient of x
  batch_norm(x, rm64, rv64, {}, {}, true);
  CHECK_THROWS_WITH(sum(saved_use).backward(), doctest::Contains("modified in place"));
}

// ---- group norm ---------------------------------------------------------------------------------

TEST_CASE("group_norm matches the reference loop") {
  struct Case { Shape shape; int64_t groups; };
  const std::vector<Case> cases = {{{2, 6, 5}, 3}, {{3, 4, 2, 3}, 2}, {{2, 4, 3}, 1}, {{2, 4, 3}, 4},
                                   {{1, 8}, 4},    {{2, 3, 1, 1}, 3}};
  uint64_t seed = 40;
  for (const Case& k : cases) {
    CAPTURE(shape_str(k.shape));
    CAPTURE(k.groups);
    const int64_t B = k.shape[0], C = k.shape[1], S = spatial(k.shape);
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = test::test_tensor(k.shape, seed++, dt, -1.0, 3.0);
      Tensor w = test::test_tensor({C}, seed++, dt), b = test::test_tensor({C}, seed++, dt);
      std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector(), bv = b.to_double_vector();
      const double rtol = dt == DType::f32 ? 1e-5 : 1e-12, atol = dt == DType::f32 ? 2e-5 : 1e-12;
      RefNorm r = ref_norm(xv, B, C, S, B * k.groups, group_key, k.groups, &wv, &bv, 1e-5);
      RV_EXPECT_CLOSE(group_norm(x, k.groups, w, b), f64(r.y, k.shape), rtol, atol);
      RefNorm r0 = ref_norm(xv, B, C, S, B * k.groups, group_key, k.groups, nullptr, nullptr, 1e-2);
      RV_EXPECT_CLOSE(group_norm(x, k.groups, {}, {}, 1e-2), f64(r0.y, k.shape), rtol, atol);
    }
  }
  // non-contiguous (B, C, H, W) from a channels-last buffer
  Tensor xl = test::test_tensor({2, 3, 4, 6}, 50).permute({0, 3, 1, 2});
  REQUIRE(!xl.is_contiguous());
  RV_EXPECT_CLOSE(group_norm(xl, 3), group_norm(xl.contiguous(), 3), 0, 0);
}

TEST_CASE("group_norm matches PyTorch, with gradients") {
  // x = r((2, 6, 3), 21, 2.0, 0.5); w = r((6,), 22); b = r((6,), 23); gy = r((2, 6, 3), 24); groups 3
  Tensor x = f64({1.65,  -1.11, 0.66,  -0.42, 1.42,  2.43, -1.29, 1.25,  -1.43, -0.72, 0.43,  0.28,
                  2.01,  1.7,   1.15,  1.93,  -0.23, 0.71, -1.29, 2.28,  -1.28, 2.35,  -0.17, -0.69,
                  -0.86, -1.39, -0.95, 1.41,  1.39,  0.56, -0.97, -0.03, 1.97,  -0.55, -0.98, -0.5},
                 {2, 6, 3})
                 .requires_grad_();
  Tensor w = f64({1.71, -0.07, -0.95, 0.42, 0.16, 1.97}, {6}).requires_grad_();
  Tensor b = f64({-0.3, -0.48, 0.65, -0.61, 0.8, -0.47}, {6}).requires_grad_();
  Tensor gy = f64({-1.54, 0.4,   0.91,  0.79,  -0.23, -1.22, 0.97,  1.51,  0.57,  -0.44, -0.31, -0.33,
                   -0.53, -0.03, 1.47,  -0.17, 1.44,  -0.32, -1.35, 1.12,  -1.95, 0.86,  0.54,  -1.48,
                   -0.26, -1.9,  -1.65, -0.89, 1.19,  -0.82, -0.43, -1.26, 1.85,  -1.89, 1.88,  -0.65},
                  {2, 6, 3});
  Tensor y = group_norm(x, 3, w, b, 1e-5);
  RV_EXPECT_CLOSE(
      y,
      f64({0.9321595159661318,   -2.939673801756666,  -0.45665026104313244, -0.4115672028872411,
           -0.5172312700375709,  -0.5752316547233497, 1.6679703737578029,   -0.8102833796078386,
           1.8045670373291374,   -0.8141760655487316, -0.31811449784230605, -0.3828181805866224,
           0.962096412937358,    0.8991529206485301,  0.7874789827167387,   1.3258142136315567,
           -4.074128294179341,   -1.7241533139283023, -1.9510692624144739,  2.004848366323561,
           -1.9399882606533028,  -0.5775257757342824, -0.4632164944085188,  -0.4396288649285993,
           1.388595628079632,    1.8300869997512919,  1.4635658610050084,   -0.10055315403925656,
           -0.1079186506073637,  -0.41358675818380974, 0.6746078096529112,  0.8231817494759325,
           1.1392965150568286,   -1.1965371028934264, -2.033352158904605,   -1.0992330266130568},
          {2, 6, 3}),
      1e-12, 1e-12);
  y.backward(gy);
  RV_EXPECT_CLOSE(
      x.grad(),
      f64({-1.8255112332427688,  -0.007109493359506391, 1.2875026738250976,  -0.38783532237622886,
           0.27280884873836775,  0.6601445264150388,    -0.48929185058826097, -0.7325631213238767,
           -0.114647251800575,   0.33097329349750204,   0.5154521061954577,  0.4900768240197527,
           0.5802486378382019,   0.24900557470789497,   -0.21423770030605005, 0.15118498501596767,
           1.160748513477813,    -1.9269500107338269,   -0.27285157912449887, 0.4968732396469233,
           -0.943222280358448,   -0.8217834368437773,   0.5814021095017741,  0.9595819471780261,
           -0.7114844874355377,  0.3969965941079374,    0.40263838419635445, -0.1523392298286394,
           0.6039500297498049,   -0.5397612907899197,   0.07678848090065218, 0.022737271481233556,
           0.6784157708885767,   -3.4988757197223257,   3.802565823447797,   -1.0816316269959336},
          {2, 6, 3}),
      1e-11, 1e-12);
  RV_EXPECT_CLOSE(w.grad(),
                  f64({2.8727508011556186, -0.6321338081778779, 4.564291855654297, -0.22049233964513862,
                       3.406978803012853, -3.173020084493479},
                      {6}),
                  1e-11, 1e-12);
  RV_EXPECT_CLOSE(b.grad(),
                  f64({-2.4099999999999997, -0.74, -0.7600000000000002, -1.6, 1.07, 0.2899999999999999}, {6}),
                  1e-11, 1e-12);
}

TEST_CASE("group_norm edge cases and errors") {
  CHECK(group_norm(zeros({0, 4, 3}), 2).shape() == Shape{0, 4, 3});
  Tensor y = group_norm(test::test_tensor({2, 4, 3}, 60, DType::bf16), 2);
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, group_norm(test::test_tensor({2, 4, 3}, 60, DType::bf16).to(DType::f32), 2).to(DType::bf16),
                  0, 0);
  CHECK_THROWS_WITH_AS(group_norm(zeros({2, 6, 3}), 4),
                       doctest::Contains("group_norm: expected the channel count C = 6 to be divisible by groups = 4"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(group_norm(zeros({2, 6, 3}), 0), doctest::Contains("divisible by groups = 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(group_norm(zeros({2, 6, 3}), 3, ones({3})),
                       doctest::Contains("group_norm: expected weight of shape [6] (one per channel), got [3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(group_norm(zeros({6}), 3), doctest::Contains("group_norm: expected input of shape (B, C)"),
                       std::invalid_argument);
}

TEST_CASE("norms do not depend on the thread count") {
#ifdef _OPENMP
  Tensor x = test::test_tensor({16, 8, 24, 24}, 70);  // many planes: the loops run in parallel
  Tensor w = test::test_tensor({8}, 71), b = test::test_tensor({8}, 72);
  Tensor gy = test::test_tensor({16, 8, 24, 24}, 73);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<Tensor> out;
    for (int mode = 0; mode < 2; ++mode) {
      Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_(), br = b.detach().requires_grad_();
      Tensor rm = zeros({8}), rv = ones({8});
      Tensor y = mode == 0 ? batch_norm(xr, rm, rv, wr, br, true) : group_norm(xr, 4, wr, br);
      y.backward(gy);
      out.insert(out.end(), {y, xr.grad(), wr.grad(), br.grad(), rm, rv});
    }
    return out;
  };
  const int saved = omp_get_max_threads();
  auto one = run(1), two = run(2), three = run(3);
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    RV_EXPECT_CLOSE(two[i], one[i], 0, 0);
    RV_EXPECT_CLOSE(three[i], one[i], 0, 0);
  }
#else
  MESSAGE("built without OpenMP: one thread only");
#endif
}
