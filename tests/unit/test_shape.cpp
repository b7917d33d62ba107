// Shape ops against plain reference loops: cat, stack, split, chunk, roll, flip, repeat and
// Swin's window_partition / window_reverse; non-contiguous inputs, negative dims, empty
// tensors, other dtypes, and the error messages.
#include <vector>

#include "engine/ops/shape.h"
#include "tests/support/check.h"
#include "tests/support/ref_loops.h"

using namespace rv;
using namespace rv::test;

namespace {

int64_t pmod(int64_t a, int64_t n) { return ((a % n) + n) % n; }

// cat(ts, dim) against the reference loop: out[..., j, ...] = ts[k][..., j - start_k, ...].
void check_cat(const std::vector<Tensor>& ts, int64_t dim) {
  Tensor out = cat(ts, dim);
  const int64_t d = dim < 0 ? dim + ts[0].dim() : dim;
  Shape os = ts[0].shape();
  std::vector<int64_t> sizes;
  os[d] = 0;
  for (const Tensor& t : ts) {
    sizes.push_back(t.size(d));
    os[d] += t.size(d);
  }
  REQUIRE(out.shape() == os);
  REQUIRE(out.is_contiguous());
  std::vector<double> ov = out.to_double_vector();
  std::vector<std::vector<double>> tv;
  for (const Tensor& t : ts) tv.push_back(t.to_double_vector());
  for_each_coord(os, [&](const Shape& c) {
    int64_t k = 0, j = c[d];
    while (j >= sizes[k]) j -= sizes[k++];
    Shape ic = c;
    ic[d] = j;
    REQUIRE(ov[flat_index(c, os)] == tv[k][flat_index(ic, ts[k].shape())]);
  });
}

}  // namespace

TEST_CASE("cat of three tensors matches a reference loop, any dim, non-contiguous inputs") {
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape base{2, 3, 4};
    std::vector<Tensor> ts;
    std::vector<int64_t> sizes{2, 1, 3};
    for (int k = 0; k < 3; ++k) {
      Shape s = base;
      s[d] = sizes[k];
      ts.push_back(k == 1 ? test::test_tensor(s, 10 + k) : test::test_noncontiguous(s, 10 + k));
    }
    Tensor out = cat(ts, dim);
    Shape os = base;
    os[d] = 6;
    REQUIRE(out.shape() == os);
    REQUIRE(out.is_contiguous());
    std::vector<double> ov = out.to_double_vector();
    for_each_coord(os, [&](const Shape& c) {
      int64_t k = 0, j = c[d];
      while (j >= sizes[k]) j -= sizes[k++];
      Shape ic = c;
      ic[d] = j;
      REQUIRE(ov[flat_index(c, os)] == ts[k].to_double_vector()[flat_index(ic, ts[k].shape())]);
    });
  }
}

TEST_CASE("cat in one pass: inputs contiguous below dim, strided above it") {
  // Swin's patch merging: the four 2x2 neighbours, strided views, side by side in channels
  Tensor x = test::test_tensor({2, 6, 10, 5}, 30);
  Tensor x0 = x.slice(1, 0, 6, 2).slice(2, 0, 10, 2), x1 = x.slice(1, 1, 6, 2).slice(2, 0, 10, 2);
  Tensor x2 = x.slice(1, 0, 6, 2).slice(2, 1, 10, 2), x3 = x.slice(1, 1, 6, 2).slice(2, 1, 10, 2);
  check_cat({x0, x1, x2, x3}, -1);
  check_cat({x0, x1, x2, x3}, 2);  // slabs of several rows
  // ViT's class token: an expanded (stride 0) batch dim, then the patch tokens
  Tensor cls = test::test_tensor({1, 1, 4}, 31).expand({3, 1, 4});
  check_cat({cls, test::test_tensor({3, 5, 4}, 32)}, 1);
  // a size-1 dim with a stride of its parent's, an empty input, dim 0 (a single outer row)
  Tensor y = test::test_tensor({3, 5, 4}, 33);
  check_cat({y.slice(1, 2, 3), zeros({3, 0, 4}), y}, 1);
  check_cat({y.slice(0, 1, 3), y}, 0);
  // one input not contiguous below dim (a transpose): the whole cat takes the copy_ path
  check_cat({y, test::test_tensor({3, 2, 5}, 34).transpose(1, 2)}, 2);
  // other dtypes, bit for bit
  Tensor xi = arange(2 * 4 * 6, DType::i64).reshape({2, 4, 6});
  check_cat({xi.slice(1, 0, 4, 2), xi.slice(1, 1, 4, 2)}, 2);
  Tensor xb = x.to(DType::bf16);
  check_cat({xb.slice(2, 0, 10, 2), xb.slice(2, 1, 10, 2)}, 3);
  // gradients still reach every input (as narrow views of the output gradient)
  Tensor a = test::test_tensor({2, 3, 4}, 35).requires_grad_(), b = test::test_tensor({2, 3, 2}, 36).requires_grad_();
  Tensor g = test::test_tensor({2, 3, 6}, 37);
  cat({a, b}, 2).backward(g);
  CHECK(a.grad().to_double_vector() == g.slice(2, 0, 4).to_double_vector());
  CHECK(b.grad().to_double_vector() == g.slice(2, 4, 6).to_double_vector());
}

TEST_CASE("cat handles empty tensors as PyTorch does") {
  Tensor a = test::test_tensor({2, 3}, 1), b = test::test_tensor({1, 3}, 2);
  // 1-D empty tensors are skipped whatever the others' shapes
  Tensor out = cat({zeros({0}), a, zeros({0}), b});
  CHECK(out.shape() == Shape{3, 3});
  std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector(), ov = out.to_double_vector();
  av.insert(av.end(), bv.begin(), bv.end());
  CHECK(ov == av);
  CHECK(cat({zeros({0}), zeros({0})}).shape() == Shape{0});
  // other empty tensors take part and must match
  CHECK(cat({zeros({0, 3}), a}, 0).shape() == Shape{2, 3});
  CHECK(cat({zeros({2, 0}), a}, 1).shape() == Shape{2, 3});
  CHECK_THROWS_WITH(cat({zeros({0, 2}), a}, 0), doctest::Contains("cat: tensor 1 has shape [2, 3] but tensor 0 has shape [0, 2]"));
  // gradients reach every input, skipped ones get an empty gradient
  Tensor e = zeros({0}).requires_grad_();
  Tensor x = ones({2}).requires_grad_();
  cat({e, x}).backward(from_vector(std::vector<float>{3, 4}, {2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 4});
  CHECK(e.grad().shape() == Shape{0});
}

TEST_CASE("cat keeps integer and bf16 values exactly, and refuses mixed dtypes") {
  Tensor i = from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  CHECK(cat({i, i}).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 1, 2, 3});
  Tensor b = test::test_tensor({2, 2}, 3, DType::bf16);
  Tensor cb = cat({b, b}, 1);
  CHECK(cb.dtype() == DType::bf16);
  CHECK(cb.narrow(1, 2, 2).to_double_vector() == b.to_double_vector());
  CHECK_THROWS_WITH(cat({zeros({2}), zeros({2}), zeros({2}, DType::f64)}),
                    doctest::Contains("cat: tensor 0 is float32 but tensor 2 is float64; cat does not promote"));
  CHECK_THROWS_WITH(cat({zeros({2, 3}), zeros({2, 4})}, 0), doctest::Contains("shapes must match except in dim 0"));
  CHECK_THROWS_WITH(cat({zeros({2, 3}), zeros({2, 3, 1})}, 0), doctest::Contains("cat: tensor 1 has shape"));
  CHECK_THROWS_WITH(cat({scalar_tensor(1), scalar_tensor(2)}), doctest::Contains("zero-dimensional"));
  CHECK_THROWS_WITH(cat({}), doctest::Contains("non-empty list"));
  CHECK_THROWS_WITH(cat({zeros({2, 3})}, 2), doctest::Contains("cat: dim 2 is out of range"));
}

TEST_CASE("stack inserts a new dim at any position") {
  Tensor a = test::test_noncontiguous({2, 3}, 4), b = test::test_tensor({2, 3}, 5);
  std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector();
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Tensor out = stack({a, b}, dim);
    Shape os{2, 3};
    os.insert(os.begin() + d, 2);
    REQUIRE(out.shape() == os);
    std::vector<double> ov = out.to_double_vector();
    for_each_coord(os, [&](const Shape& c) {
      Shape ic = c;
      ic.erase(ic.begin() + d);
      REQUIRE(ov[flat_index(c, os)] == (c[d] == 0 ? av : bv)[flat_index(ic, {2, 3})]);
    });
  }
  CHECK(stack({scalar_tensor(1), scalar_tensor(2)}).to_vector<float>() == std::vector<float>{1, 2});
  CHECK(stack({zeros({0}), zeros({0})}, 1).shape() == Shape{0, 2});
  CHECK_THROWS_WITH(stack({a, zeros({3, 2})}), doctest::Contains("stack: tensor 1 has shape [3, 2] but tensor 0 has shape [2, 3]"));
  CHECK_THROWS_WITH(stack({a, b}, 3), doctest::Contains("stack: dim 3"));
}

TEST_CASE("split and chunk return views with PyTorch's sizes") {
  Tensor x = test::test_tensor({3, 5}, 6);
  auto p = split(x, 2, 1);
  REQUIRE(p.size() == 3);
  CHECK(p[0].shape() == Shape{3, 2});
  CHECK(p[2].shape() == Shape{3, 1});
  CHECK(p[2].storage() == x.storage());  // a view, not a copy
  CHECK(p[1].to_double_vector() == x.narrow(1, 2, 2).to_double_vector());
  auto q = split(x, Shape{1, 0, 4}, -1);
  REQUIRE(q.size() == 3);
  CHECK(q[1].shape() == Shape{3, 0});
  CHECK(q[2].to_double_vector() == x.narrow(1, 1, 4).to_double_vector());
  CHECK(split(x, 7, 1).size() == 1);
  CHECK(split(zeros({0, 2}), 0, 0).size() == 1);
  auto c = chunk(x, 3, 1);  // ceil(5 / 3) = 2 -> sizes 2, 2, 1
  REQUIRE(c.size() == 3);
  CHECK(c[2].shape() == Shape{3, 1});
  CHECK(chunk(zeros({6, 2}), 4, 0).size() == 3);  // ceil(6 / 4) = 2 -> only 3 chunks
  CHECK(chunk(zeros({0}), 3).size() == 3);
  CHECK_THROWS_WITH(split(x, Shape{2, 2}, 1), doctest::Contains("split: sizes [2, 2] sum to 4 but dim 1 has size 5"));
  CHECK_THROWS_WITH(split(x, 0, 1), doctest::Contains("split_size can only be 0"));
  CHECK_THROWS_WITH(chunk(x, 0, 1), doctest::Contains("chunk: chunks must be positive"));
  CHECK_THROWS_WITH(split(x, 1, 2), doctest::Contains("split: dim 2"));
}

TEST_CASE("roll matches a reference loop: several dims, negative and large shifts, non-contiguous") {
  const Shape xs{2, 5, 4, 3};
  Tensor x = test::test_noncontiguous(xs, 7);
  std::vector<double> xv = x.to_double_vector();
  struct Case { Shape shifts, dims; };
  for (const Case& cs : {Case{{2, -1}, {1, 2}}, Case{{-3, 3}, {-3, -2}}, Case{{7}, {1}}, Case{{1}, {-1}},
                         Case{{-2, 5, 1}, {3, 0, 3}}, Case{{0, 0}, {0, 1}}}) {
    Tensor out = roll(x, cs.shifts, cs.dims);
    Shape total(4, 0);
    for (size_t i = 0; i < cs.dims.size(); ++i) total[pmod(cs.dims[i], 4)] += cs.shifts[i];
    std::vector<double> ov = out.to_double_vector();
    REQUIRE(out.shape() == xs);
    for_each_coord(xs, [&](const Shape& c) {
      Shape ic = c;
      for (int d = 0; d < 4; ++d) ic[d] = pmod(c[d] - total[d], xs[d]);
      REQUIRE(ov[flat_index(c, xs)] == xv[flat_index(ic, xs)]);
    });
  }
  // a contiguous last dim is copied as unit-stride runs (two per row when rolled)
  Tensor r = test::test_tensor({3, 20}, 13);
  std::vector<double> rv = r.to_double_vector(), ro = roll(r, {-7}, {1}).to_double_vector();
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 20; ++b) CHECK(ro[a * 20 + b] == rv[a * 20 + pmod(b + 7, 20)]);
  // no dims: roll the flattened tensor
  Tensor m = from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(roll(m, {2}, {}).to_vector<float>() == std::vector<float>{4, 5, 0, 1, 2, 3});
  CHECK(roll(m.t(), {-1}, {}).to_vector<float>() == std::vector<float>{3, 1, 4, 2, 5, 0});
  // other dtypes and empty tensors
  Tensor i = from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  CHECK(roll(i, {1}, {0}).to_vector<int64_t>() == std::vector<int64_t>{3, 1, 2});
  CHECK(roll(zeros({0, 3}), {1, 1}, {0, 1}).shape() == Shape{0, 3});
  CHECK_THROWS_WITH(roll(x, {1, 2}, {0}), doctest::Contains("roll: got 2 shifts for 1 dims"));
  CHECK_THROWS_WITH(roll(x, {1}, {4}), doctest::Contains("roll: dim 4"));
}

TEST_CASE("roll round trip as in Swin's shifted windows") {
  Tensor x = test::test_tensor({2, 7, 7, 5}, 8);
  Tensor y = roll(roll(x, {-3, -3}, {1, 2}), {3, 3}, {1, 2});
  CHECK(y.to_double_vector() == x.to_double_vector());
}

TEST_CASE("flip matches a reference loop") {
  const Shape xs{3, 4, 5};
  Tensor x = test::test_noncontiguous(xs, 9);
  std::vector<double> xv = x.to_double_vector();
  for (Shape dims : {Shape{0}, Shape{-1}, Shape{0, 2}, Shape{}, Shape{1, 2, 0}}) {
    std::vector<bool> f(3, false);
    for (int64_t d : dims) f[pmod(d, 3)] = true;
    std::vector<double> ov = flip(x, dims).to_double_vector();
    for_each_coord(xs, [&](const Shape& c) {
      Shape ic = c;
      for (int d = 0; d < 3; ++d)
        if (f[d]) ic[d] = xs[d] - 1 - c[d];
      REQUIRE(ov[flat_index(c, xs)] == xv[flat_index(ic, xs)]);
    });
  }
  CHECK(flip(from_vector(std::vector<float>{1, 2, 3}, {3}), {0}).to_vector<float>() == std::vector<float>{3, 2, 1});
  CHECK(flip(zeros({0, 2}), {0}).shape() == Shape{0, 2});
  CHECK_THROWS_WITH(flip(x, {1, -2}), doctest::Contains("flip: dim -2 appears twice"));
}

TEST_CASE("repeat tiles like torch.repeat, with new leading dims") {
  Tensor x = test::test_noncontiguous({2, 3}, 10);
  std::vector<double> xv = x.to_double_vector();
  Tensor out = repeat(x, {2, 1, 3});
  const Shape os{2, 2, 9};
  REQUIRE(out.shape() == os);
  std::vector<double> ov = out.to_double_vector();
  for_each_coord(os, [&](const Shape& c) { REQUIRE(ov[flat_index(c, os)] == xv[flat_index({c[1] % 2, c[2] % 3}, {2, 3})]); });
  CHECK(repeat(x, {0, 2}).shape() == Shape{0, 6});
  CHECK(repeat(scalar_tensor(4), {3}).to_vector<float>() == std::vector<float>{4, 4, 4});
  CHECK_THROWS_WITH(repeat(x, {2}), doctest::Contains("repeat: got 1 repeats for a 2-d tensor"));
}

TEST_CASE("window_partition follows the Swin window order; window_reverse inverts it") {
  const int64_t B = 2, H = 6, W = 9, C = 4, ws = 3, nW = (H / ws) * (W / ws);
  Tensor x = test::test_noncontiguous({B, H, W, C}, 11);
  std::vector<double> xv = x.to_double_vector();
  Tensor win = window_partition(x, ws);
  REQUIRE(win.shape() == Shape{B * nW, ws * ws, C});
  std::vector<double> wv = win.to_double_vector();
  // window index = b * nW + wr * (W / ws) + wc, tokens row-major inside the window
  for (int64_t b = 0; b < B; ++b)
    for (int64_t wr = 0; wr < H / ws; ++wr)
      for (int64_t wc = 0; wc < W / ws; ++wc)
        for (int64_t i = 0; i < ws; ++i)
          for (int64_t j = 0; j < ws; ++j)
            for (int64_t c = 0; c < C; ++c)
              REQUIRE(wv[flat_index({b * nW + wr * (W / ws) + wc, i * ws + j, c}, {B * nW, ws * ws, C})] ==
                      xv[flat_index({b, wr * ws + i, wc * ws + j, c}, {B, H, W, C})]);
  Tensor back = window_reverse(win, ws, H, W);
  REQUIRE(back.shape() == x.shape());
  CHECK(back.to_double_vector() == xv);
  // a single window (the last Swin stage at 224: 7x7 with ws = 7) is a plain reshape
  Tensor one = test::test_tensor({1, 7, 7, 2}, 12);
  CHECK(window_partition(one, 7).to_double_vector() == one.to_double_vector());
  CHECK_THROWS_WITH(window_partition(x, 4), doctest::Contains("must be multiples of the window size 4"));
  CHECK_THROWS_WITH(window_partition(zeros({6, 6, 2}), 3), doctest::Contains("expected x of shape (B, H, W, C)"));
  CHECK_THROWS_WITH(window_reverse(win, ws, H, 12), doctest::Contains("12 windows is not a multiple of the 8 windows"));
  CHECK_THROWS_WITH(window_reverse(win, 2, H, W), doctest::Contains("expected windows of shape (B*nW, 4, C)"));
}
