// ms_deform_attn: the op and its three gradients against a plain reference loop written here in
// double (bilinear sampling by hand with grid_sample's own coordinate formula, and grid_sample's
// gradient formulas), on 1 to 4 levels of odd sizes (7x5, 3x1, 1x1, 2x4), with locations outside
// [0, 1], exactly on the borders and exactly on pixel centres; non-contiguous inputs, empty sizes,
// bf16, thread-count independence, and the error messages.
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/ms_deform_attn.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::test;

namespace {

using Levels = std::vector<std::pair<int64_t, int64_t>>;

struct Problem {
  Levels levels;
  int64_t B = 0, Q = 0, NH = 0, HD = 0, P = 0, S = 0;
  Tensor value, loc, attn, shapes, starts;
};

// Random inputs of the given sizes; locations uniform in [-0.2, 1.2] with some points moved exactly
// onto the borders (x or y = 0 or 1, exact in binary for any size) and, on levels whose width and
// height are powers of two, exactly onto pixel centres (x = (j + 0.5) / W is then exact, so this
// op's x * W - 0.5 and grid_sample's ((2x - 1) + 1) W - 1) / 2 agree to the last bit).
Problem make_problem(const Levels& levels, int64_t B, int64_t Q, int64_t NH, int64_t HD, int64_t P, DType dt,
                     uint64_t seed) {
  Problem pr;
  pr.levels = levels;
  pr.B = B, pr.Q = Q, pr.NH = NH, pr.HD = HD, pr.P = P;
  for (auto [h, w] : levels) pr.S += h * w;
  const int64_t L = int64_t(levels.size());
  pr.value = test_tensor({B, pr.S, NH, HD}, seed, DType::f64);
  std::vector<double> loc = test_tensor({B, Q, NH, L, P, 2}, seed + 1, DType::f64, -0.2, 1.2).to_double_vector();
  auto pow2 = [](int64_t n) { return n > 0 && (n & (n - 1)) == 0; };
  for (int64_t pt = 0; pt < B * Q * NH * L * P; ++pt) {
    const int64_t l = (pt / P) % L;
    const auto [H, W] = levels[size_t(l)];
    double& x = loc[size_t(2 * pt)];
    double& y = loc[size_t(2 * pt + 1)];
    switch (pt % 7) {
      case 0: x = 0.0; break;
      case 1: y = 1.0; break;
      case 2: x = 1.0, y = 0.0; break;
      case 3:
        if (pow2(W) && pow2(H)) x = (double(pt % W) + 0.5) / double(W), y = (double(pt % H) + 0.5) / double(H);
        break;
      default: break;
    }
  }
  pr.loc = from_vector(loc, {B, Q, NH, L, P, 2}, DType::f64);
  pr.attn = test_tensor({B, Q, NH, L, P}, seed + 2, DType::f64, 0.0, 1.0);
  if (dt != DType::f64) {
    pr.value = pr.value.to(dt), pr.loc = pr.loc.to(dt), pr.attn = pr.attn.to(dt);
  }
  pr.shapes = ms_deform_attn_spatial_shapes(levels);
  pr.starts = ms_deform_attn_level_start(levels);
  return pr;
}

struct Reference {
  Tensor out, dvalue, dloc, dattn;  // f64
};

// The reference: mmcv's PyTorch path written as loops, grid_sample's forward and backward formulas.
Reference reference(const Problem& pr, const Tensor& g_t) {
  const int64_t B = pr.B, Q = pr.Q, NH = pr.NH, HD = pr.HD, P = pr.P, S = pr.S, L = int64_t(pr.levels.size());
  const std::vector<double> v = pr.value.to_double_vector(), loc = pr.loc.to_double_vector(),
                            attn = pr.attn.to_double_vector(), g = g_t.to_double_vector();
  std::vector<double> out(size_t(B * Q * NH * HD), 0.0), dv(v.size(), 0.0), dloc(loc.size(), 0.0),
      dattn(attn.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t q = 0; q < Q; ++q)
      for (int64_t h = 0; h < NH; ++h) {
        int64_t start = 0;
        for (int64_t l = 0; l < L; ++l) {
          const auto [H, W] = pr.levels[size_t(l)];
          for (int64_t p = 0; p < P; ++p) {
            const int64_t pt = (((b * Q + q) * NH + h) * L + l) * P + p;
            // grid_sample(align_corners=False): grid = 2 loc - 1, then ((grid + 1) * size - 1) / 2.
            const double ix = ((2.0 * loc[size_t(2 * pt)] - 1.0 + 1.0) * double(W) - 1.0) / 2.0;
            const double iy = ((2.0 * loc[size_t(2 * pt + 1)] - 1.0 + 1.0) * double(H) - 1.0) / 2.0;
            const double a = attn[size_t(pt)];
            if (!(std::fabs(ix) < 1e6 && std::fabs(iy) < 1e6)) continue;
            const int64_t xw = int64_t(std::floor(ix)), yn = int64_t(std::floor(iy)), xe = xw + 1, ys = yn + 1;
            const double nw = (double(xe) - ix) * (double(ys) - iy), ne = (ix - double(xw)) * (double(ys) - iy);
            const double sw = (double(xe) - ix) * (iy - double(yn)), se = (ix - double(xw)) * (iy - double(yn));
            auto at = [&](int64_t yy, int64_t xx) -> int64_t {  // flat value index of channel 0, or -1
              if (yy < 0 || yy >= H || xx < 0 || xx >= W) return -1;
              return ((b * S + start + yy * W + xx) * NH + h) * HD;
            };
            const int64_t inw = at(yn, xw), ine = at(yn, xe), isw = at(ys, xw), ise = at(ys, xe);
            double gix = 0, giy = 0, gsum = 0;
            for (int64_t c = 0; c < HD; ++c) {
              const double vnw = inw >= 0 ? v[size_t(inw + c)] : 0.0, vne = ine >= 0 ? v[size_t(ine + c)] : 0.0;
              const double vsw = isw >= 0 ? v[size_t(isw + c)] : 0.0, vse = ise >= 0 ? v[size_t(ise + c)] : 0.0;
              const double s = vnw * nw + vne * ne + vsw * sw + vse * se;
              const int64_t o = ((b * Q + q) * NH + h) * HD + c;
              out[size_t(o)] += a * s;
              const double go = g[size_t(o)];
              gsum += go * s;
              // grid_sample's backward w.r.t. the pixel coordinates, with the sample's gradient a * go.
              gix += a * go * (-vnw * (double(ys) - iy) + vne * (double(ys) - iy) - vsw * (iy - double(yn)) +
                               vse * (iy - double(yn)));
              giy += a * go * (-vnw * (double(xe) - ix) - vne * (ix - double(xw)) + vsw * (double(xe) - ix) +
                               vse * (ix - double(xw)));
              if (inw >= 0) dv[size_t(inw + c)] += a * go * nw;
              if (ine >= 0) dv[size_t(ine + c)] += a * go * ne;
              if (isw >= 0) dv[size_t(isw + c)] += a * go * sw;
              if (ise >= 0) dv[size_t(ise + c)] += a * go * se;
            }
            dattn[size_t(pt)] = gsum;
            // d ix / d loc_x = W (grid_sample's W / 2 times the 2 of grid = 2 loc - 1).
            dloc[size_t(2 * pt)] = gix * double(W);
            dloc[size_t(2 * pt + 1)] = giy * double(H);
          }
          start += H * W;
        }
      }
  Reference r;
  r.out = from_vector(out, {B, Q, NH * HD}, DType::f64);
  r.dvalue = from_vector(dv, pr.value.shape(), DType::f64);
  r.dloc = from_vector(dloc, pr.loc.shape(), DType::f64);
  r.dattn = from_vector(dattn, pr.attn.shape(), DType::f64);
  return r;
}

struct Result {
  Tensor out, dvalue, dloc, dattn;
};

// Runs the op with all three inputs as leaves and backward from g.
Result run(const Tensor& value, const Tensor& loc, const Tensor& attn, const Problem& pr, const Tensor& g) {
  Tensor v = value.detach().requires_grad_(), l = loc.detach().requires_grad_(), a = attn.detach().requires_grad_();
  Tensor out = ms_deform_attn(v, pr.shapes, pr.starts, l, a);
  out.backward(g);
  return {out, v.grad(), l.grad(), a.grad()};
}

// f64: the same formulas in a different order (a few ulps). f32: rounding of sums of up to
// 4 * L * P terms of size ~1 and of the x * W - 0.5 coordinate (the location gradient scales with W).
constexpr Tol kTol64{1e-12, 1e-12};
constexpr Tol kTol32{2e-5, 2e-5};
constexpr Tol kTol32Loc{1e-4, 1e-4};

void check_against_reference(const Levels& levels, int64_t B, int64_t Q, int64_t NH, int64_t HD, int64_t P,
                             DType dt, uint64_t seed) {
  CAPTURE(levels.size());
  CAPTURE(dtype_name(dt));
  const Problem pr = make_problem(levels, B, Q, NH, HD, P, dt, seed);
  const Tensor g = test_tensor({B, Q, NH * HD}, seed + 3, dt);
  const Reference ref = reference(pr, g);
  const Result res = run(pr.value, pr.loc, pr.attn, pr, g);
  CHECK(res.out.dtype() == dt);
  CHECK(res.out.shape() == Shape{B, Q, NH * HD});
  const Tol t = dt == DType::f64 ? kTol64 : kTol32, tl = dt == DType::f64 ? kTol64 : kTol32Loc;
  RV_EXPECT_CLOSE(res.out, ref.out, t.rtol, t.atol);
  RV_EXPECT_CLOSE(res.dvalue, ref.dvalue, t.rtol, t.atol);
  RV_EXPECT_CLOSE(res.dloc, ref.dloc, tl.rtol, tl.atol);
  RV_EXPECT_CLOSE(res.dattn, ref.dattn, t.rtol, t.atol);
}

const Levels kLevels = {{7, 5}, {3, 1}, {1, 1}, {2, 4}};

}  // namespace

TEST_CASE("ms_deform_attn: forward and the three gradients match the reference loop, 1 to 4 levels") {
  for (DType dt : {DType::f64, DType::f32})
    for (size_t L = 1; L <= 4; ++L) {
      const Levels lv(kLevels.begin(), kLevels.begin() + int64_t(L));
      check_against_reference(lv, 2, 5, 3, 4, 3, dt, 100 + L);
    }
}

TEST_CASE("ms_deform_attn: one head, one point, one channel; many channels (a vectorised row)") {
  check_against_reference({{2, 4}}, 1, 1, 1, 1, 1, DType::f64, 7);
  check_against_reference({{5, 7}, {2, 4}}, 1, 9, 2, 33, 4, DType::f32, 8);
  check_against_reference({{1, 1}, {3, 1}}, 3, 2, 1, 2, 5, DType::f64, 9);
}

TEST_CASE("ms_deform_attn: points beyond the borders read zeros, and far-away or non-finite ones read nothing") {
  const Levels lv = {{3, 4}};
  Tensor value = test_tensor({1, 12, 1, 2}, 1, DType::f64);
  // x = -0.125 puts ix on -1 exactly: the right tap (column 0) has weight 0, the left one is outside.
  // x = 1.125 puts ix on W = 4: both taps outside.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> locs = {-0.125, 0.5, 1.125, 0.5, 50.0, 0.5, -1e30, 0.5, nan, 0.5, inf, 0.5, 0.5, -inf};
  const int64_t P = int64_t(locs.size() / 2);
  Tensor loc = from_vector(locs, {1, 1, 1, 1, P, 2}, DType::f64);
  Tensor attn = ones({1, 1, 1, 1, P}, DType::f64);
  Tensor v = value.detach().requires_grad_(), l = loc.detach().requires_grad_(), a = attn.detach().requires_grad_();
  Tensor out = ms_deform_attn(v, ms_deform_attn_spatial_shapes(lv), ms_deform_attn_level_start(lv), l, a);
  CHECK(out.to_double_vector() == std::vector<double>{0.0, 0.0});
  out.backward(ones({1, 1, 2}, DType::f64));
  // Only the first point has a tap inside (weight 0): its x-gradient is the slope into column 0.
  const std::vector<double> vv = value.to_double_vector(), dl = l.grad().to_double_vector();
  // iy = 0.5 * 3 - 0.5 = 1: row 1 exactly (fy = 0), so the gradient is W * (v[1, 0] . g).
  CHECK(dl[0] == doctest::Approx(4.0 * (vv[2 * 4] + vv[2 * 4 + 1])));
  for (size_t i = 1; i < dl.size(); ++i) CHECK(dl[i] == 0.0);
  for (double x : a.grad().to_double_vector()) CHECK(x == 0.0);
  for (double x : v.grad().to_double_vector()) CHECK(x == 0.0);
}

TEST_CASE("ms_deform_attn: non-contiguous inputs give the contiguous results") {
  const Problem pr = make_problem({{7, 5}, {3, 1}}, 2, 4, 3, 6, 2, DType::f64, 21);
  const Tensor g = test_tensor({2, 4, 18}, 22, DType::f64);
  const Result want = run(pr.value, pr.loc, pr.attn, pr, g);
  // value stored (B, NH, S, HD) and viewed back; locations with (x, y) stored as two planes; weights transposed.
  Tensor value = pr.value.permute({0, 2, 1, 3}).contiguous().permute({0, 2, 1, 3});
  Tensor loc = pr.loc.permute({5, 0, 1, 2, 3, 4}).contiguous().permute({1, 2, 3, 4, 5, 0});
  Tensor attn = pr.attn.transpose(0, 1).contiguous().transpose(0, 1);
  REQUIRE(!value.is_contiguous());
  REQUIRE(!loc.is_contiguous());
  REQUIRE(!attn.is_contiguous());
  const Result got = run(value, loc, attn, pr, g.transpose(0, 1).contiguous().transpose(0, 1));
  RV_EXPECT_CLOSE(got.out, want.out, 0.0, 0.0);
  RV_EXPECT_CLOSE(got.dvalue, want.dvalue, 0.0, 0.0);
  RV_EXPECT_CLOSE(got.dloc, want.dloc, 0.0, 0.0);
  RV_EXPECT_CLOSE(got.dattn, want.dattn, 0.0, 0.0);
}

TEST_CASE("ms_deform_attn: empty sizes") {
  // No queries, no batch, no points, no channels, a level of size 0.
  for (auto [B, Q, P, HD] : std::vector<std::array<int64_t, 4>>{{2, 0, 2, 4}, {0, 3, 2, 4}, {1, 3, 0, 4}, {1, 3, 2, 0}}) {
    const Problem pr = make_problem({{3, 1}}, B, Q, 2, HD, P, DType::f64, 31);
    const Result r = run(pr.value, pr.loc, pr.attn, pr, zeros({B, Q, 2 * HD}, DType::f64));
    CHECK(r.out.shape() == Shape{B, Q, 2 * HD});
    for (double x : r.out.to_double_vector()) CHECK(x == 0.0);
    CHECK(r.dvalue.shape() == pr.value.shape());
    CHECK(r.dloc.shape() == pr.loc.shape());
  }
  const Levels lv = {{0, 4}, {2, 2}};
  check_against_reference(lv, 1, 3, 2, 3, 2, DType::f64, 32);
}

TEST_CASE("ms_deform_attn: bf16 inputs are computed in f32 and rounded once") {
  const Problem pr = make_problem({{7, 5}, {2, 4}}, 1, 6, 2, 8, 3, DType::f32, 41);
  Tensor want = ms_deform_attn(pr.value.to(DType::bf16).to(DType::f32), pr.shapes, pr.starts,
                               pr.loc.to(DType::bf16).to(DType::f32), pr.attn.to(DType::bf16).to(DType::f32));
  Tensor got = ms_deform_attn(pr.value.to(DType::bf16), pr.shapes, pr.starts, pr.loc.to(DType::bf16),
                              pr.attn.to(DType::bf16));
  CHECK(got.dtype() == DType::bf16);
  CHECK(got.to_double_vector() == want.to(DType::bf16).to_double_vector());
  // Mixed: f32 value with bf16 weights promotes to f32.
  CHECK(ms_deform_attn(pr.value, pr.shapes, pr.starts, pr.loc, pr.attn.to(DType::bf16)).dtype() == DType::f32);
}

TEST_CASE("ms_deform_attn: results and gradients do not depend on the thread count") {
#ifdef _OPENMP
  const Problem pr = make_problem({{7, 5}, {3, 1}, {1, 1}, {2, 4}}, 2, 40, 4, 8, 4, DType::f32, 51);
  const Tensor g = test_tensor({2, 40, 32}, 52);
  auto results = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    const Result r = run(pr.value, pr.loc, pr.attn, pr, g);
    omp_set_num_threads(prev);
    return std::vector<std::vector<float>>{r.out.to_vector<float>(), r.dvalue.to_vector<float>(),
                                           r.dloc.to_vector<float>(), r.dattn.to_vector<float>()};
  };
  const auto one = results(1);
  CHECK(one == results(2));
  CHECK(one == results(3));
#endif
}

TEST_CASE("ms_deform_attn: only the gradients that are needed are computed") {
  const Problem pr = make_problem({{7, 5}, {2, 4}}, 1, 3, 2, 4, 2, DType::f64, 61);
  const Tensor g = test_tensor({1, 3, 8}, 62, DType::f64);
  const Result all = run(pr.value, pr.loc, pr.attn, pr, g);
  Tensor l = pr.loc.detach().requires_grad_();
  ms_deform_attn(pr.value, pr.shapes, pr.starts, l, pr.attn).backward(g);
  RV_EXPECT_CLOSE(l.grad(), all.dloc, 0.0, 0.0);
  Tensor v = pr.value.detach().requires_grad_();
  ms_deform_attn(v, pr.shapes, pr.starts, pr.loc, pr.attn).backward(g);
  RV_EXPECT_CLOSE(v.grad(), all.dvalue, 0.0, 0.0);
  Tensor a = pr.attn.detach().requires_grad_();
  ms_deform_attn(pr.value, pr.shapes, pr.starts, pr.loc, a).backward(g);
  RV_EXPECT_CLOSE(a.grad(), all.dattn, 0.0, 0.0);
}

TEST_CASE("ms_deform_attn: errors name the argument and what was expected") {
  const Problem pr = make_problem({{7, 5}, {3, 1}}, 1, 2, 2, 4, 2, DType::f32, 71);
  auto call = [&](const Tensor& v, const Tensor& s, const Tensor& st, const Tensor& l, const Tensor& a) {
    return ms_deform_attn(v, s, st, l, a);
  };
  const Tensor v = pr.value, s = pr.shapes, st = pr.starts, l = pr.loc, a = pr.attn;
  CHECK_THROWS_WITH_AS(call(v.narrow(1, 0, 30), s, st, l, a),
                       doctest::Contains("`value` has S = 30 tokens but `spatial_shapes` sums to 38"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s.to(DType::i32), st, l, a),
                       doctest::Contains("expected `spatial_shapes` to be an int64 tensor, got int32"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s, st.to(DType::f32), l, a),
                       doctest::Contains("expected `level_start_index` to be an int64 tensor"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s, from_vector(std::vector<int64_t>{0, 30}, {2}), l, a),
                       doctest::Contains("expected `level_start_index`[1] = 35"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s, st.narrow(0, 0, 1), l, a),
                       doctest::Contains("expected `level_start_index` of shape (2)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s.narrow(0, 0, 1), st.narrow(0, 0, 1), l, a),
                       doctest::Contains("`value` has S = 38 tokens but `spatial_shapes` sums to 35"),
                       std::invalid_argument);
  // L mismatch between the shapes and the locations.
  const Problem pr1 = make_problem({{7, 5}}, 1, 2, 2, 4, 2, DType::f32, 72);
  CHECK_THROWS_WITH_AS(call(v, s, st, pr1.loc, pr1.attn),
                       doctest::Contains("expected `sampling_locations` of shape (B, Q, NH, L, P, 2) = (1, Q, 2, 2, P, 2)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, s, st, l, a.narrow(4, 0, 1)),
                       doctest::Contains("expected `attention_weights` of shape (B, Q, NH, L, P) = [1, 2, 2, 2, 2]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v.to(DType::i64), s, st, l, a),
                       doctest::Contains("ms_deform_attn: expected `value` to be a float tensor"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v.flatten(2), s, st, l, a),
                       doctest::Contains("expected `value` of shape (B, S, NH, HD)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(call(v, from_vector(std::vector<int64_t>{7, -5, 3, 1}, {2, 2}), st, l, a),
                       doctest::Contains("expected `spatial_shapes` >= 0"), std::invalid_argument);
}
