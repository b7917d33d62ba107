// rope: rope_angles and rope_apply against plain loops and against numbers computed with the
// reference formulas in PyTorch; the axial / mixed / Swin frequency tables.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/rope.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::test;

namespace {

// Plain reference rotation in double: x (B, NH, N, HD), angles (NHa, N - skip, HD/2).
Tensor ref_rope(const Tensor& x, const Tensor& angles, int64_t skip) {
  const int64_t B = x.size(0), NH = x.size(1), N = x.size(2), HD = x.size(3);
  std::vector<double> xv = x.to_double_vector(), av = angles.to_double_vector(), out(xv.size());
  const int64_t NHa = angles.size(0), Nr = N - skip;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < HD / 2; ++j) {
          const int64_t i = ((b * NH + h) * N + n) * HD + 2 * j;
          if (n < skip) {
            out[i] = xv[i];
            out[i + 1] = xv[i + 1];
            continue;
          }
          const double a = av[((NHa == 1 ? 0 : h) * Nr + (n - skip)) * (HD / 2) + j];
          out[i] = xv[i] * std::cos(a) - xv[i + 1] * std::sin(a);
          out[i + 1] = xv[i] * std::sin(a) + xv[i + 1] * std::cos(a);
        }
  return from_vector(out, x.shape(), DType::f64);
}

Tensor indexed(const Shape& shape, float step, bool use_sin) {
  Tensor t = empty(shape, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = use_sin ? std::sin(float(i) * step) : std::cos(float(i) * step);
  return t;
}

}  // namespace

TEST_CASE("rope_grid_positions: x is the column, y the row, from 0") {
  Tensor p = rope_grid_positions(2, 3);
  CHECK(p.shape() == Shape{6, 2});
  CHECK(p.to_vector<float>() == std::vector<float>{0, 0, 1, 0, 2, 0, 0, 1, 1, 1, 2, 1});
  CHECK(rope_grid_positions(0, 4).shape() == Shape{0, 2});
}

TEST_CASE("rope_axial_freqs: the ViT table (theta 100, d 64), x on the first half, y on the second") {
  // omega_k from the spec, section 2 (fp32 values printed by PyTorch: 1 / 100 ** (arange(0,64,4) / 64)).
  const std::vector<double> w = {1.0,         0.7498942017555237,  0.5623413324356079,  0.4216965138912201,
                                 0.3162277638912201, 0.23713736236095428, 0.17782793939113617, 0.1333521455526352,
                                 0.10000000149011612, 0.07498941570520401, 0.05623412877321243, 0.04216964915394783,
                                 0.03162277862429619, 0.0237137358635664,  0.017782794311642647, 0.01333521492779255};
  Tensor f = rope_axial_freqs(3, 64, 100.0);
  CHECK(f.shape() == Shape{2, 3, 32});
  std::vector<double> v = f.to_double_vector();
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t k = 0; k < 16; ++k) {
      CHECK(v[(0 * 3 + h) * 32 + k] == doctest::Approx(w[k]).epsilon(2e-7));
      CHECK(v[(0 * 3 + h) * 32 + 16 + k] == 0.0);
      CHECK(v[(1 * 3 + h) * 32 + k] == 0.0);
      CHECK(v[(1 * 3 + h) * 32 + 16 + k] == doctest::Approx(w[k]).epsilon(2e-7));
    }
  CHECK_THROWS_WITH_AS(rope_axial_freqs(1, 30), doctest::Contains("multiple of 4"), std::invalid_argument);
}

TEST_CASE("rope_swin_axial_freqs: phi = 0, theta 50, with fp32 cos(pi/2) like the reference") {
  // PyTorch: the mixed init with angle 0 and theta 50, d = 32 (tools: scratch script with the
  // spec's section 3 formulas). Pairs 8..15 carry an x-frequency of cos(pi/2 in fp32) * m_k.
  const std::vector<double> expect = {
      1, 0.61323756, 0.37606031, 0.2306143, 0.14142136, 0.086724892, 0.05318296, 0.032613788, -4.3711388e-08,
      -2.6805465e-08, -1.6438118e-08, -1.0080472e-08, -6.181724e-09, -3.7908654e-09, -2.3247011e-09, -1.425594e-09,
      0, 0, 0, 0, 0, 0, 0, 0, 1, 0.61323756, 0.37606031, 0.2306143, 0.14142136, 0.086724892, 0.05318296, 0.032613788};
  Tensor f = rope_swin_axial_freqs(1, 32);
  CHECK(f.shape() == Shape{2, 1, 16});
  RV_EXPECT_CLOSE(f, from_vector(expect, {2, 1, 16}, DType::f32), .rtol = 1e-6, .atol = 1e-15);
}

TEST_CASE("rope_mixed_freqs: orthogonal directions per head, base-10 magnitudes, reproducible") {
  // PyTorch, the spec's init formulas with phi = 0.3 and 1.7, d = 8, theta = 10.
  const std::vector<double> expect = {0.95533651, 0.30210394, -0.29552031, -0.093451723, -0.12884454, -0.040744223,
                                      -0.99166483, -0.31359196, 0.29552022, 0.093451694, 0.95533645, 0.30210391,
                                      0.99166483, 0.31359196, -0.12884447, -0.0407442};
  Tensor f = rope_mixed_freqs_from_angles({0.3f, 1.7f}, 8, 10.0);
  RV_EXPECT_CLOSE(f, from_vector(expect, {2, 2, 4}, DType::f32), .rtol = 1e-6, .atol = 1e-7);

  Generator g1(7), g2(7);
  Tensor a = rope_mixed_freqs(6, 64, g1), b = rope_mixed_freqs(6, 64, g2), c = rope_mixed_freqs(6, 64, g1);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());  // the next layer draws new angles
  std::vector<double> v = a.to_double_vector();
  const double theta = 10.0;
  for (int64_t h = 0; h < 6; ++h)
    for (int64_t k = 0; k < 16; ++k) {
      const double fx0 = v[h * 32 + k], fy0 = v[(6 + h) * 32 + k];
      const double fx1 = v[h * 32 + 16 + k], fy1 = v[(6 + h) * 32 + 16 + k];
      const double m = 1.0 / std::pow(theta, 4.0 * k / 64.0);
      CHECK(std::hypot(fx0, fy0) == doctest::Approx(m).epsilon(1e-6));
      CHECK(std::hypot(fx1, fy1) == doctest::Approx(m).epsilon(1e-6));
      CHECK(fx0 * fx1 + fy0 * fy1 == doctest::Approx(0.0).epsilon(1e-6).scale(m * m));
      // same direction for every k within a head
      CHECK(std::atan2(fy0, fx0) == doctest::Approx(std::atan2(v[(6 + h) * 32], v[h * 32])).epsilon(1e-5));
    }
}

TEST_CASE("rope_angles: each product rounded to f32, then summed (no FMA), bit for bit") {
  Tensor f = test_tensor({2, 3, 5}, 11, DType::f32, -3.0, 3.0);
  Tensor pos = test_tensor({7, 2}, 12, DType::f32, 0.0, 13.0);
  Tensor a = rope_angles(f, pos);
  CHECK(a.shape() == Shape{3, 7, 5});
  std::vector<float> fv = f.to_vector<float>(), pv = pos.to_vector<float>(), av = a.to_vector<float>();
  int64_t mismatches = 0;
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t n = 0; n < 7; ++n)
      for (int64_t j = 0; j < 5; ++j) {
        volatile float px = pv[n * 2] * fv[(0 * 3 + h) * 5 + j];  // volatile: force each rounding
        volatile float py = pv[n * 2 + 1] * fv[(1 * 3 + h) * 5 + j];
        volatile float sum = px + py;
        if (av[(h * 7 + n) * 5 + j] != sum) ++mismatches;
      }
  CHECK(mismatches == 0);
}

TEST_CASE("rope_angles: the mixed case against PyTorch") {
  // PyTorch: angles = t_x * Fx + t_y * Fy for the freqs above on a 2 x 3 grid, shape (2, 6, 4).
  const std::vector<double> expect = {
      0, 0, 0, 0, 0.95533651, 0.30210394, -0.29552031, -0.093451723, 1.910673, 0.60420787, -0.59104061, -0.18690345,
      0.29552022, 0.093451694, 0.95533645, 0.30210391, 1.2508568, 0.39555562, 0.65981615, 0.20865218, 2.2061932,
      0.69765955, 0.36429584, 0.11520046, 0, 0, -0, -0, -0.12884454, -0.040744223, -0.99166483, -0.31359196,
      -0.25768909, -0.081488445, -1.9833297, -0.62718391, 0.99166483, 0.31359196, -0.12884447, -0.0407442, 0.86282027,
      0.27284774, -1.1205093, -0.35433614, 0.73397577, 0.23210351, -2.112174, -0.6679281};
  Tensor a = rope_angles(rope_mixed_freqs_from_angles({0.3f, 1.7f}, 8, 10.0), rope_grid_positions(2, 3));
  RV_EXPECT_CLOSE(a, from_vector(expect, {2, 6, 4}, DType::f32), .rtol = 1e-6, .atol = 1e-7);
}

TEST_CASE("rope_apply + rope_angles: outputs and gradients against PyTorch, CLS skipped") {
  // The scratch PyTorch script: B=2, NH=2, N=1+6 (CLS + 2x3 grid), d=8, x[i] = sin(0.37 i),
  // loss = sum(out * w) with w[i] = cos(0.21 i); NV's complex-multiply rotation on tokens 1..6.
  const std::vector<double> out_b1h1 = {
      -0.62243754, -0.29728752, 0.068095714, 0.42426258, 0.7230078,   0.92389935,  0.99974346,  0.94027787,
      0.75354826,  0.46483466,  0.11320194,  -0.25375238, -0.58635581, -0.83960491, -0.9792158,  -0.98629373,
      -0.93204176, -0.50148606, -0.28748488, 0.086675912, 0.84460777,  0.038032055, 1.1897414,   0.66531247,
      1.0978596,   0.4852879,   0.46592999,  0.068729721, -0.43783256, 0.47579515,  -1.2582624,  -0.29905674,
      0.17757088,  -1.293202,   -0.49419761, -0.45908672, 0.13710465,  0.42244828,  0.76959163,  0.89842707,
      -0.060447514, 1.3680348,  0.59497833,  0.63660419,  -0.19693217, -0.20587945, -0.85409212, -0.58705854,
      -0.069990396, -1.3882971, -0.69050729, -0.78622538, 0.21893455,  0.19240066,  0.80401182,  0.30442739};
  const std::vector<double> dfreqs = {-0.5953871, 0.69652247, -4.2126184, -0.75285077, 0.24226642,  -0.36131537,
                                      0.28582382, 0.20953679, 0.50235879, -1.5121156,  -0.83202904, -0.53524852,
                                      -1.6457973, 0.082664579, 0.13965988, -0.24125078};
  const std::vector<double> dx_b0h0 = {
      1,           0.97803092,  0.91308892,  0.80802751,  0.66746283,  0.49757108,  0.30581692,  0.10062582,
      -0.1089867,  -0.31381056, -0.50484604, -0.67369962, -0.81295204, -0.91648483, -0.9797489,  -0.99996465,
      -1.3063378,  0.27195138,  -0.96339834, -0.39230609, -0.38227743, -0.42767477, -0.10280482, 0.10821889,
      0.37551928,  -0.47408909, 1.0241275,   0.28677413,  0.21691972,  1.3274593,   0.80138743,  1.143209,
      1.0992348,   0.49952307,  0.69705451,  0.41970122,  0.23578253,  -0.18816729, -0.21809721, -0.27740285,
      -0.81453776, 0.27717406,  -1.1147897,  -0.53482801, -1.3894317,  -0.1873166,  -1.1383193,  -0.68150306,
      -0.051321745, 1.0230305,  -0.54540348, 0.089610547, -0.022796791, 0.152127,   0.39593109,  0.484153};
  Tensor freqs = rope_mixed_freqs_from_angles({0.3f, 1.7f}, 8, 10.0).requires_grad_();
  Tensor x = indexed({2, 2, 7, 8}, 0.37f, true).requires_grad_();
  Tensor w = indexed({2, 2, 7, 8}, 0.21f, false);
  Tensor out = rope_apply(x, rope_angles(freqs, rope_grid_positions(2, 3)), 1);
  sum(out * w).backward();
  RV_EXPECT_CLOSE(out.select(0, 1).select(0, 1), from_vector(out_b1h1, {7, 8}, DType::f32), .rtol = 1e-5,
                  .atol = 1e-6);
  RV_EXPECT_CLOSE(freqs.grad(), from_vector(dfreqs, {2, 2, 4}, DType::f32), .rtol = 1e-5, .atol = 1e-5);
  RV_EXPECT_CLOSE(x.grad().select(0, 0).select(0, 0), from_vector(dx_b0h0, {7, 8}, DType::f32), .rtol = 1e-5,
                  .atol = 1e-6);
  // the CLS token passes through, values and gradient
  RV_EXPECT_CLOSE(out.narrow(2, 0, 1), x.detach().narrow(2, 0, 1), .rtol = 0, .atol = 1e-30);
  RV_EXPECT_CLOSE(x.grad().narrow(2, 0, 1), w.narrow(2, 0, 1), .rtol = 0, .atol = 1e-30);
}

TEST_CASE("rope_apply against the reference loop: odd sizes, shared heads, strides, f64, bf16") {
  SUBCASE("per-head angles, skip 1, f32") {
    Tensor x = test_tensor({3, 3, 11, 6}, 1);
    Tensor a = test_tensor({3, 10, 3}, 2, DType::f32, -7.0, 7.0);
    RV_EXPECT_CLOSE(rope_apply(x, a, 1), ref_rope(x, a, 1), .rtol = 1e-5, .atol = 1e-6);
  }
  SUBCASE("angles shared by all heads, no skip, f64") {
    Tensor x = test_tensor({2, 5, 9, 10}, 3, DType::f64);
    Tensor a = test_tensor({1, 9, 5}, 4, DType::f64, -20.0, 20.0);
    RV_EXPECT_CLOSE(rope_apply(x, a), ref_rope(x, a, 0), .rtol = 1e-12, .atol = 1e-13);
  }
  SUBCASE("non-contiguous x (transposed storage)") {
    Tensor x = test_noncontiguous({2, 3, 5, 4}, 5);
    Tensor a = test_tensor({3, 4, 2}, 6, DType::f32, -3.0, 3.0);
    RV_EXPECT_CLOSE(rope_apply(x, a, 1), ref_rope(x, a, 1), .rtol = 1e-5, .atol = 1e-6);
  }
  SUBCASE("q as a view of a qkv projection: (B, N, 3, NH, HD) permuted, no copy needed") {
    Tensor qkv = test_tensor({2, 7, 3, 4, 8}, 7);
    Tensor q = qkv.permute({2, 0, 3, 1, 4}).select(0, 0);  // (B, NH, N, HD), row stride 3*NH*HD
    Tensor a = test_tensor({4, 6, 4}, 8, DType::f32, -3.0, 3.0);
    RV_EXPECT_CLOSE(rope_apply(q, a, 1), ref_rope(q.contiguous(), a, 1), .rtol = 1e-5, .atol = 1e-6);
  }
  SUBCASE("bf16 rotates in f32 and rounds once") {
    Tensor x = test_tensor({2, 2, 5, 8}, 9, DType::bf16);
    Tensor a = test_tensor({2, 5, 4}, 10, DType::f32, -3.0, 3.0);
    Tensor out = rope_apply(x, a);
    CHECK(out.dtype() == DType::bf16);
    // within one bf16 rounding of the exact result (2^-8 relative)
    RV_EXPECT_CLOSE(out, ref_rope(x, a, 0), .rtol = 4e-3, .atol = 1e-6);
  }
  SUBCASE("empty batch and all tokens skipped") {
    CHECK(rope_apply(zeros({0, 2, 3, 4}), zeros({2, 3, 2})).shape() == Shape{0, 2, 3, 4});
    Tensor x = test_tensor({1, 2, 3, 4}, 11);
    RV_EXPECT_CLOSE(rope_apply(x, zeros({2, 0, 2}), 3), x, .rtol = 0, .atol = 1e-30);
  }
}

TEST_CASE("rope_apply: backward w.r.t. x is the inverse rotation, angles sum over batch and heads") {
  Tensor x = test_tensor({3, 2, 6, 8}, 21).requires_grad_();
  Tensor a = test_tensor({1, 5, 4}, 22, DType::f32, -3.0, 3.0).requires_grad_();
  Tensor out = rope_apply(x, a, 1);
  Tensor g = test_tensor({3, 2, 6, 8}, 23);
  out.backward(g);
  // dx = R(-a) g
  Tensor neg_a = mul(a.detach(), -1.0);
  RV_EXPECT_CLOSE(x.grad(), ref_rope(g, neg_a, 1), .rtol = 1e-5, .atol = 1e-6);
  // da[j] = sum over b, h of -g[2j] out[2j+1] + g[2j+1] out[2j]
  std::vector<double> gv = g.to_double_vector(), ov = out.to_double_vector(), da(5 * 4, 0.0);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t n = 1; n < 6; ++n)
        for (int64_t j = 0; j < 4; ++j) {
          int64_t i = ((b * 2 + h) * 6 + n) * 8 + 2 * j;
          da[(n - 1) * 4 + j] += -gv[i] * ov[i + 1] + gv[i + 1] * ov[i];
        }
  RV_EXPECT_CLOSE(a.grad(), from_vector(da, {1, 5, 4}, DType::f32), .rtol = 1e-5, .atol = 1e-5);
}

TEST_CASE("rope errors name the op and the argument") {
  CHECK_THROWS_WITH_AS(rope_apply(zeros({1, 2, 3, 5}), zeros({2, 3, 2})), doctest::Contains("HD even"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_apply(zeros({1, 2, 3, 4}), zeros({3, 3, 2})), doctest::Contains("`angles`"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_apply(zeros({1, 2, 3, 4}), zeros({2, 3, 2}), 1), doctest::Contains("(2 or 1, 2, 2)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_apply(zeros({1, 2, 3, 4}), zeros({2, 3, 2}), 4), doctest::Contains("skip_tokens"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_apply(zeros({1, 2, 3, 4}, DType::i32), zeros({2, 3, 2})),
                       doctest::Contains("rope_apply: expected `x` to be a float"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_angles(zeros({2, 3, 4}), zeros({5, 3})), doctest::Contains("rope_angles: expected `pos`"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(rope_angles(zeros({2, 4}), zeros({5, 2})), doctest::Contains("`freqs`"),
                       std::invalid_argument);
}
