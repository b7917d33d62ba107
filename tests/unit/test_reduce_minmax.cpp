// max / min / argmax / argmin (over all elements and along a dim) and var, against plain
// reference loops: every dim, keepdim, strided inputs, the tiled path (reducing a leading dim),
// ties, NaN, bf16 and integer dtypes, 0-d and empty inputs, gradients, and error messages.
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"
#include "tests/support/ref_loops.h"

using namespace rv;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reference max/min along `dim`: values and first index (first NaN if any), row-major
// over the kept dims (keepdim only changes the shape).
struct RefVI {
  std::vector<double> values;
  std::vector<int64_t> indices;
};

RefVI ref_extremum(const Tensor& x, int64_t dim, bool is_max) {
  std::vector<double> v = x.to_double_vector();
  Shape s = x.shape();
  Shape kept = s;
  kept.erase(kept.begin() + dim);
  RefVI r;
  for (int64_t o = 0; o < shape_numel(kept); ++o) {
    std::vector<int64_t> ko = test::multi_index(o, kept), idx = ko;
    idx.insert(idx.begin() + dim, 0);
    double best = 0;
    int64_t bi = -1;
    for (int64_t j = 0; j < s[dim]; ++j) {
      idx[dim] = j;
      double e = v[test::flat_index(idx, s)];
      if (bi >= 0 && std::isnan(best)) break;
      if (bi < 0 || std::isnan(e) || (is_max ? e > best : e < best)) {
        best = e;
        bi = j;
      }
    }
    r.values.push_back(best);
    r.indices.push_back(bi);
  }
  return r;
}

Shape reduced_shape(const Shape& s, int64_t dim, bool keepdim) {
  Shape r = s;
  if (keepdim)
    r[dim] = 1;
  else
    r.erase(r.begin() + dim);
  return r;
}

void check_dim_reduction(const Tensor& x, const char* label) {
  CAPTURE(label);
  for (int64_t dim = 0; dim < x.dim(); ++dim) {
    for (bool keepdim : {false, true}) {
      for (bool is_max : {true, false}) {
        CAPTURE(dim);
        CAPTURE(keepdim);
        CAPTURE(is_max);
        RefVI ref = ref_extremum(x, dim, is_max);
        ValuesIndices got = is_max ? max(x, dim, keepdim) : min(x, dim, keepdim);
        Shape rs = reduced_shape(x.shape(), dim, keepdim);
        REQUIRE(got.values.shape() == rs);
        CHECK(got.values.dtype() == x.dtype());
        CHECK(got.indices.dtype() == DType::i64);
        RV_EXPECT_CLOSE(got.values, from_vector(ref.values, rs, DType::f64), .rtol = 0, .atol = 1e-300);
        CHECK(got.indices.to_vector<int64_t>() == ref.indices);
        // negative dim, and argmax/argmin agree
        Tensor am = is_max ? argmax(x, dim - x.dim(), keepdim) : argmin(x, dim - x.dim(), keepdim);
        CHECK(am.shape() == rs);
        CHECK(am.to_vector<int64_t>() == ref.indices);
      }
    }
  }
}

// Values on a coarse grid, so ties are common: floor(3 u) / 3 for u uniform in [-1, 1).
Tensor tie_tensor(const Shape& shape, uint64_t seed, DType dt = DType::f32) {
  std::vector<double> v = test::test_tensor(shape, seed, DType::f64).to_double_vector();
  for (double& e : v) e = std::floor(3 * e) / 3;
  return from_vector(v, shape, dt);
}

}  // namespace

TEST_CASE("max/min along each dim: dense, strided, ties, NaN, bf16, integers") {
  check_dim_reduction(test::test_tensor({3, 4, 5}, 1), "dense f32");
  check_dim_reduction(test::test_noncontiguous({4, 3, 6}, 2), "transposed");
  check_dim_reduction(tie_tensor({4, 5, 3}, 3), "ties");
  check_dim_reduction(tie_tensor({6, 7}, 4, DType::bf16), "bf16 ties");
  check_dim_reduction(tie_tensor({6, 7}, 5, DType::f64).t(), "f64 transposed ties");
  Tensor xn = test::test_tensor({4, 6}, 6, DType::f64);
  {
    double* p = xn.data<double>();
    p[2] = kNaN;   // row 0, col 2
    p[4] = kNaN;   // row 0, col 4 (the later NaN must not win)
    p[13] = kNaN;  // row 2, col 1
  }
  check_dim_reduction(xn, "NaN");
  check_dim_reduction(from_vector(std::vector<int64_t>{3, -1, 7, 7, 2, 3, 0, 9, 9, -4, 5, 1}, {3, 4}), "int64");
  check_dim_reduction(gt(tie_tensor({3, 5}, 7), 0.0), "bool");
}

TEST_CASE("max/min over a leading dim use the tiled path and agree with the reference") {
  // (C=300 kept, contiguous) with the reduced dim strided: more than one 256-wide tile
  Tensor x = tie_tensor({5, 2, 300}, 8);
  check_dim_reduction(x, "tiled f32");
  Tensor xn = test::test_tensor({7, 300}, 9, DType::f64);
  xn.data<double>()[3 * 300 + 17] = kNaN;
  xn.data<double>()[5 * 300 + 17] = kNaN;
  xn.data<double>()[6 * 300 + 299] = kNaN;
  check_dim_reduction(xn, "tiled NaN");
}

TEST_CASE("max/min along a dim: 0-d, size-1 and empty kept dims; errors") {
  Tensor s = scalar_tensor(2.5);
  ValuesIndices r = max(s, 0);
  CHECK(r.values.dim() == 0);
  CHECK(r.values.item() == 2.5);
  CHECK(r.indices.item() == 0);
  CHECK(max(s, -1, true).values.dim() == 0);
  Tensor e = empty({0, 3});
  CHECK(max(e, 1).values.shape() == Shape{0});
  CHECK(min(e, 1, true).indices.shape() == Shape{0, 1});
  CHECK_THROWS_WITH(max(e, 0), "max: cannot reduce over dim 0 of size 0 (shape [0, 3]); there is no identity");
  CHECK_THROWS_WITH(argmin(ones({2, 3}), 2), doctest::Contains("argmin: dim 2 is out of range for a 2-d tensor"));
  Tensor one = test::test_tensor({4, 1, 3}, 10);
  CHECK(max(one, 1).values.to_vector<float>() == one.reshape({4, 3}).to_vector<float>());
  CHECK(max(one, 1).indices.to_vector<int64_t>() == std::vector<int64_t>(12, 0));
}

TEST_CASE("max/min over all elements: several chunks, NaN anywhere, dtypes, errors") {
  // 100003 elements: four chunks of the parallel kernel; the extremes are in the last ones
  Tensor x = test::test_tensor({100003}, 11, DType::f32, -1, 1);
  x.data<float>()[90000] = 5.0f;
  x.data<float>()[70001] = -7.0f;
  CHECK(max(x).item() == 5.0);
  CHECK(min(x).item() == -7.0);
  CHECK(max(x).dim() == 0);
  x.data<float>()[99999] = NAN;
  CHECK(std::isnan(max(x).item()));
  CHECK(std::isnan(min(x).item()));
  Tensor t = test::test_noncontiguous({5, 7}, 12);
  std::vector<double> tv = t.to_double_vector();
  CHECK(max(t).item() == *std::max_element(tv.begin(), tv.end()));
  CHECK(min(t).item() == *std::min_element(tv.begin(), tv.end()));
  Tensor b = t.to(DType::bf16);
  CHECK(max(b).dtype() == DType::bf16);
  CHECK(max(b).item() == max(b.to(DType::f32)).item());
  CHECK(max(from_vector(std::vector<int64_t>{3, -9, 8}, {3})).item() == 8);
  CHECK(min(from_vector(std::vector<int64_t>{3, -9, 8}, {3})).item() == -9);
  CHECK(max(scalar_tensor(-1.5)).item() == -1.5);
  CHECK_THROWS_WITH(max(empty({2, 0})), doctest::Contains("max: cannot reduce an empty tensor (shape [2, 0])"));
}

TEST_CASE("max/min gradients: along a dim to the first index; over all, shared among ties") {
  // PyTorch: x = [1, 3, 3, 2]; x.max().backward() -> [0, .5, .5, 0]; x.max(0).values -> [0, 1, 0, 0]
  Tensor x = from_vector(std::vector<double>{1, 3, 3, 2}, {4}, DType::f64).requires_grad_();
  max(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 0});
  x.zero_grad();
  max(x, 0).values.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  x.zero_grad();
  min(x, 0, true).values.backward(full({1}, 2.0, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 0, 0, 0});
  // along dim 0 of a strided (3, 4) with keepdim, weights per output
  Tensor y = tie_tensor({4, 3}, 13, DType::f64).t().detach().requires_grad_();  // leaf (3, 4), strided
  ValuesIndices r = max(y, 0, true);
  Tensor w = test::test_tensor({1, 4}, 14, DType::f64);
  sum(r.values * w).backward();
  RefVI ref = ref_extremum(y, 0, true);
  std::vector<double> want(12, 0.0), wv = w.to_double_vector();
  for (int j = 0; j < 4; ++j) want[ref.indices[j] * 4 + j] = wv[j];
  RV_EXPECT_CLOSE(y.grad(), from_vector(want, {3, 4}, DType::f64), .rtol = 0, .atol = 1e-300);
  // all-element max of bf16 with ties: bf16 gradient shared 1/3 each
  Tensor z = from_vector(std::vector<double>{2, 1, 2, 2}, {4}, DType::bf16).requires_grad_();
  max(z).backward();
  std::vector<double> gz = z.grad().to_double_vector();
  CHECK(gz[1] == 0);
  CHECK(gz[0] == doctest::Approx(1.0 / 3).epsilon(0.01));
  // a NaN maximum sends the gradient to the NaN
  Tensor n = from_vector(std::vector<double>{1, kNaN, 3}, {3}, DType::f64).requires_grad_();
  max(n).backward();
  CHECK(n.grad().to_vector<double>() == std::vector<double>{0, 1, 0});
}

// ---- var -----------------------------------------------------------------------------------------

namespace {

// Reference var over a dims mask, two-pass in long double.
std::vector<double> ref_var(const Tensor& x, const std::vector<bool>& mask, double correction) {
  std::vector<double> v = x.to_double_vector();
  Shape s = x.shape(), kept;
  for (size_t d = 0; d < s.size(); ++d)
    if (!mask[d]) kept.push_back(s[d]);
  std::vector<long double> sum(shape_numel(kept), 0), ssd(shape_numel(kept), 0);
  std::vector<int64_t> cnt(shape_numel(kept), 0);
  auto out_of = [&](int64_t i) {
    std::vector<int64_t> idx = test::multi_index(i, s), k;
    for (size_t d = 0; d < s.size(); ++d)
      if (!mask[d]) k.push_back(idx[d]);
    return test::flat_index(k, kept);
  };
  for (int64_t i = 0; i < int64_t(v.size()); ++i) {
    sum[out_of(i)] += v[i];
    cnt[out_of(i)] += 1;
  }
  for (int64_t i = 0; i < int64_t(v.size()); ++i) {
    int64_t o = out_of(i);
    long double d = v[i] - sum[o] / cnt[o];
    ssd[o] += d * d;
  }
  std::vector<double> r(sum.size());
  for (size_t o = 0; o < r.size(); ++o) r[o] = double(ssd[o] / std::max(0.0L, (long double)cnt[o] - correction));
  return r;
}

}  // namespace

TEST_CASE("var over dim sets, corrections, keepdim, strided and tiled layouts") {
  Tensor x = test::test_tensor({3, 4, 5}, 20, DType::f64);
  Tensor xt = test::test_noncontiguous({4, 3, 6}, 21, DType::f64);
  struct Case {
    Shape dims;
    std::vector<bool> mask;
  };
  const Case cases[] = {{{}, {true, true, true}},   {{0}, {true, false, false}}, {{1}, {false, true, false}},
                        {{-1}, {false, false, true}}, {{0, 2}, {true, false, true}}, {{0, 1}, {true, true, false}}};
  for (const Tensor& t : {x, xt}) {
    for (const Case& c : cases) {
      for (double corr : {1.0, 0.0, 2.0}) {
        for (bool keepdim : {false, true}) {
          CAPTURE(shape_str(c.dims));
          CAPTURE(corr);
          CAPTURE(keepdim);
          Tensor got = var(t, c.dims, corr, keepdim);
          Shape want_shape;
          for (int64_t d = 0; d < t.dim(); ++d)
            if (!c.mask[d])
              want_shape.push_back(t.shape()[d]);
            else if (keepdim)
              want_shape.push_back(1);
          REQUIRE(got.shape() == want_shape);
          RV_EXPECT_CLOSE(got, from_vector(ref_var(t, c.mask, corr), want_shape, DType::f64), .rtol = 1e-13,
                          .atol = 1e-16);
        }
      }
    }
  }
  // (B, N, C) over B and N: the tiled path, C wider than one tile
  Tensor bnc = test::test_tensor({3, 5, 300}, 22);
  RV_EXPECT_CLOSE(var(bnc, {0, 1}), from_vector(ref_var(bnc, {true, true, false}, 1.0), {300}, DType::f32),
                  .rtol = 1e-6, .atol = 1e-7);
}

TEST_CASE("var: accurate with a large mean, bf16, n - correction <= 0, empty, errors") {
  // values 1e4 + u (u in [-1, 1)): a one-pass sum(x^2) - n mean^2 in f32 would lose everything
  Tensor u = test::test_tensor({1000}, 23, DType::f64);
  Tensor x = (u + 1e4).to(DType::f32);
  double want = ref_var(x, {true}, 1.0)[0];
  CHECK(var(x).item() == doctest::Approx(want).epsilon(1e-6));
  Tensor b = test::test_tensor({4, 16}, 24, DType::bf16);
  Tensor vb = var(b, {1});
  CHECK(vb.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(vb, from_vector(ref_var(b, {false, true}, 1.0), {4}, DType::f64), .rtol = 1.0 / 256, .atol = 1e-30);
  CHECK(std::isnan(var(ones({1})).item()));           // 0 / 0, as PyTorch
  CHECK(var(from_vector(std::vector<double>{1, 2}, {2}), {}, 3.0).item() == INFINITY);  // 0.5 / max(0, -1)
  CHECK(std::isnan(var(empty({0})).item()));
  CHECK(var(empty({0, 3}), {1}).shape() == Shape{0});
  CHECK(var(scalar_tensor(3.0)).item() != var(scalar_tensor(3.0)).item());  // NaN: one element, correction 1
  CHECK(var(scalar_tensor(3.0), {}, 0.0).item() == 0.0);
  CHECK_THROWS_WITH(var(arange(4)), "var: expected a float tensor, got int64");
  CHECK_THROWS_WITH(var(ones({2, 3}), {1, -1}), "var: dim -1 appears twice");
  CHECK_THROWS_WITH(var(ones({2, 3}), {2}), doctest::Contains("var: dim 2 is out of range"));
}

TEST_CASE("var gradient: 2 (x - mean) / (n - correction)") {
  Tensor x = from_vector(std::vector<double>{1, 2, 4, 5}, {2, 2}, DType::f64).requires_grad_();
  sum(var(x, {1})).backward();  // rows [1,2] and [4,5]: means 1.5, 4.5; n - 1 = 1
  CHECK(x.grad().to_vector<double>() == std::vector<double>{-1, 1, -1, 1});
}
