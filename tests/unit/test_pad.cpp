// pad: every mode against a plain reference loop (odd shapes, 1-3 padded dims, negative pads,
// non-contiguous inputs, bf16, empty batch), against values printed by PyTorch, and errors.
#include <algorithm>
#include <functional>

#include "engine/autograd.h"
#include "engine/ops/pad.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// Source index of output index o in a dim of size n padded by (lo, hi); -1 = fill value.
// Written independently of the kernel: reflect/circular step the index back into range.
int64_t ref_source(const std::string& mode, int64_t o, int64_t n, int64_t lo, int64_t hi) {
  int64_t i = o - lo;
  if (mode == "constant") return (i < 0 || i >= n) ? -1 : i;
  if (mode == "replicate") return std::min(std::max<int64_t>(i, 0), n - 1);
  if (mode == "reflect") {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  }
  // circular: crop by negative pads, then wrap inside the cropped range [a, b)
  int64_t a = std::max<int64_t>(-lo, 0), b = n - std::max<int64_t>(-hi, 0);
  int64_t j = a + (o - std::max<int64_t>(lo, 0));
  while (j < a) j += b - a;
  while (j >= b) j -= b - a;
  return j;
}

// Plain N-d reference: walks every output element by its multi-index.
Tensor ref_pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, double value) {
  Shape in = x.shape(), out = in;
  const int64_t nd = x.dim(), np = int64_t(pads.size()) / 2;
  for (int64_t k = 0; k < np; ++k) out[nd - 1 - k] += pads[2 * k] + pads[2 * k + 1];
  std::vector<double> xv = x.to_double_vector(), ov(size_t(shape_numel(out)));
  Shape xs = contiguous_strides(in);
  for (int64_t e = 0; e < int64_t(ov.size()); ++e) {
    int64_t rem = e, src = 0;
    bool fill = false;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t o = rem % out[d];
      rem /= out[d];
      int64_t k = nd - 1 - d;
      int64_t i = k < np ? ref_source(mode, o, in[d], pads[2 * k], pads[2 * k + 1]) : o;
      if (i < 0) fill = true;
      else src += i * xs[d];
    }
    ov[e] = fill ? value : xv[src];
  }
  return from_vector(ov, out, x.dtype());
}

// Reference backward: the transpose of the reference gather, by finite bookkeeping.
Tensor ref_pad_grad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, const Tensor& g) {
  // pad an "index image" and add g into the element each output came from
  Tensor idx = arange(0.0, double(x.numel()), 1.0, DType::f64).reshape(x.shape());
  Tensor src = ref_pad(idx, pads, mode, -1.0);
  std::vector<double> sv = src.to_double_vector(), gv = g.to_double_vector(), gx(size_t(x.numel()), 0.0);
  for (size_t e = 0; e < sv.size(); ++e)
    if (sv[e] >= 0) gx[size_t(sv[e])] += gv[e];
  return from_vector(gx, x.shape(), DType::f64);
}

struct Case {
  Shape shape;
  std::vector<int64_t> pads;
  std::string mode;
};

}  // namespace

TEST_CASE("pad matches the reference loop in every mode, forward and backward") {
  std::vector<Case> cases = {
      {{2, 3, 7}, {2, 3}, "reflect"},          {{3, 7}, {-2, 4}, "reflect"},
      {{2, 3, 5, 7}, {1, 2, 4, 0}, "reflect"}, {{2, 2, 3, 4, 5}, {1, 1, 2, 0, 2, 1}, "reflect"},
      {{2, 3, 5, 7}, {3, -1, -2, 2}, "reflect"},
      {{2, 3, 7}, {5, 9}, "replicate"},        {{2, 3, 5, 7}, {-3, 4, 6, 1}, "replicate"},
      {{3, 4, 5, 6}, {1, 0, 0, 2, 3, 1}, "replicate"},
      {{2, 3, 7}, {7, 2}, "circular"},         {{2, 3, 5, 7}, {-2, 5, 3, -1}, "circular"},
      {{4, 3, 5, 2}, {1, 2, 2, 1, 0, 3}, "circular"},
      {{2, 3, 5, 7}, {1, 2}, "constant"},      {{2, 3, 5, 7}, {-1, 2, 0, 0, 3, -1, 1, 1}, "constant"},
      {{5}, {-2, -3}, "constant"},             {{2, 3, 5}, {4, -6, 1, 2, 0, 0}, "constant"},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.mode);
    CAPTURE(shape_str(c.shape));
    Tensor x = test::test_tensor(c.shape, seed++);
    Tensor y = pad(x, c.pads, c.mode, 0.25);
    RV_EXPECT_CLOSE(y, ref_pad(x, c.pads, c.mode, 0.25), .rtol = 0, .atol = 0);
    // the same through a non-contiguous view
    Tensor xn = test::test_noncontiguous(c.shape, seed - 1);
    RV_EXPECT_CLOSE(pad(xn, c.pads, c.mode, 0.25), y, .rtol = 0, .atol = 0);
    // backward: accumulate where an input element is read more than once
    Tensor xg = x.to(DType::f64).detach().requires_grad_();
    Tensor g = test::test_tensor(y.shape(), seed + 100, DType::f64);
    pad(xg, c.pads, c.mode, 0.25).backward(g);
    RV_EXPECT_CLOSE(xg.grad(), ref_pad_grad(x, c.pads, c.mode, g), .rtol = 1e-12, .atol = 1e-12);
  }
}

TEST_CASE("pad matches PyTorch on a 1x2x3x4 arange input") {
  // Made with: x = torch.arange(24.).reshape(1,2,3,4).requires_grad_(); y = F.pad(x, pads, mode);
  // y.backward(torch.arange(y.numel()).reshape(y.shape)); printed y and x.grad.
  Tensor x = arange(0.0, 24.0, 1.0).reshape({1, 2, 3, 4});
  struct Lit {
    std::vector<int64_t> pads;
    std::string mode;
    Shape out;
    std::vector<double> y, gx;
  };
  std::vector<Lit> lits = {
      {{2, -1, 1, 2}, "reflect", {1, 2, 6, 5},
       {6,  5,  4,  5,  6,  2,  1,  0,  1,  2,  6,  5,  4,  5,  6,  10, 9,  8,  9,  10, 6,  5,  4,  5,  6,  2,  1,  0,  1,  2,
        18, 17, 16, 17, 18, 14, 13, 12, 13, 14, 18, 17, 16, 17, 18, 22, 21, 20, 21, 22, 18, 17, 16, 17, 18, 14, 13, 12, 13, 14},
       {34, 68, 68, 0, 36, 72, 72, 0, 17, 34, 34, 0, 94, 188, 188, 0, 126, 252, 252, 0, 47, 94, 94, 0}},
      {{3, 1, -1, 2}, "replicate", {1, 2, 4, 8},
       {4,  4,  4,  4,  5,  6,  7,  7,  8,  8,  8,  8,  9,  10, 11, 11, 8,  8,  8,  8,  9,  10, 11, 11, 8,  8,  8,  8,  9,  10, 11, 11,
        16, 16, 16, 16, 17, 18, 19, 19, 20, 20, 20, 20, 21, 22, 23, 23, 20, 20, 20, 20, 21, 22, 23, 23, 20, 20, 20, 20, 21, 22, 23, 23},
       {0, 0, 0, 0, 6, 4, 5, 13, 210, 60, 63, 135, 0, 0, 0, 0, 134, 36, 37, 77, 594, 156, 159, 327}},
      {{-1, 3, 2, -1}, "circular", {1, 2, 4, 6},
       {1,  2,  3,  1,  2,  3,  5,  6,  7,  5,  6,  7,  1,  2,  3,  1,  2,  3,  5,  6,  7,  5,  6,  7,
        13, 14, 15, 13, 14, 15, 17, 18, 19, 17, 18, 19, 13, 14, 15, 13, 14, 15, 17, 18, 19, 17, 18, 19},
       {0, 30, 34, 38, 0, 54, 58, 62, 0, 0, 0, 0, 0, 126, 130, 134, 0, 150, 154, 158, 0, 0, 0, 0}},
      {{1, -2, 2, 1}, "constant", {1, 2, 6, 3},
       {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 1, 0.5, 4, 5, 0.5, 8, 9, 0.5, 0.5, 0.5,
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 12, 13, 0.5, 16, 17, 0.5, 20, 21, 0.5, 0.5, 0.5},
       {7, 8, 0, 0, 10, 11, 0, 0, 13, 14, 0, 0, 25, 26, 0, 0, 28, 29, 0, 0, 31, 32, 0, 0}},
  };
  for (const Lit& l : lits) {
    CAPTURE(l.mode);
    Tensor xg = x.detach().requires_grad_();
    Tensor y = pad(xg, l.pads, l.mode, 0.5);
    RV_EXPECT_CLOSE(y, from_vector(l.y, l.out), .rtol = 0, .atol = 0);
    y.backward(arange(0.0, double(y.numel()), 1.0).reshape(y.shape()));
    RV_EXPECT_CLOSE(xg.grad(), from_vector(l.gx, x.shape()), .rtol = 0, .atol = 0);
  }
}

TEST_CASE("pad keeps dtypes, handles empty batches and plain copies") {
  Tensor x = test::test_tensor({2, 3, 5}, 7, DType::bf16);
  Tensor y = pad(x, {2, 1}, "reflect");
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, ref_pad(x, {2, 1}, "reflect", 0), .rtol = 0, .atol = 0);
  Tensor xi = from_vector(std::vector<int64_t>{1, 2, 3}, {1, 3});
  CHECK(pad(xi, {1, 1}, "constant", 9).to_vector<int64_t>() == std::vector<int64_t>{9, 1, 2, 3, 9});
  CHECK(pad(zeros({0, 3, 4}), {1, 1}, "replicate").shape() == Shape{0, 3, 6});
  CHECK(pad(zeros({3, 4}), {-2, -2}).shape() == Shape{3, 0});
  Tensor c = pad(x, {});
  CHECK(c.shape() == x.shape());
  CHECK(!c.same(x));
  // gradient of a bf16 pad stays bf16 and accumulates
  Tensor xb = full({1, 1, 3}, 1.0, DType::bf16).requires_grad_();
  pad(xb, {2, 2}, "replicate").backward(ones({1, 1, 7}, DType::bf16));
  CHECK(xb.grad().dtype() == DType::bf16);
  CHECK(xb.grad().to_double_vector() == std::vector<double>{3, 1, 3});
}

TEST_CASE("pad errors name the op and the bad argument") {
  Tensor x = zeros({2, 3, 5});
  CHECK_THROWS_WITH(pad(x, {1}), doctest::Contains("pairs"));
  CHECK_THROWS_WITH(pad(x, {1, 1, 1, 1, 1, 1, 1, 1}), doctest::Contains("at most 2 per dim"));
  CHECK_THROWS_WITH(pad(x, {1, 1}, "mirror"), doctest::Contains("unknown mode 'mirror'"));
  CHECK_THROWS_WITH(pad(x, {5, 0}, "reflect"), doctest::Contains("smaller than the dim"));
  CHECK_THROWS_WITH(pad(x, {0, 6}, "circular"), doctest::Contains("wrap around at most once"));
  CHECK_THROWS_WITH(pad(x, {-3, -3}), doctest::Contains("negative output size"));
  CHECK_THROWS_WITH(pad(zeros({5}), {1, 1}, "reflect"), doctest::Contains("needs a 2-d or 3-d input"));
  CHECK_THROWS_WITH(pad(zeros({1, 2, 3, 4}), {1, 1}, "replicate"), doctest::Contains("needs a 2-d or 3-d input"));
  CHECK_THROWS_WITH(pad(zeros({2, 0, 4}), {1, 1}, "replicate"), doctest::Contains("non-empty"));
  CHECK_THROWS_WITH_AS(pad(x, {1}), doctest::Contains("pad:"), std::invalid_argument);
}
