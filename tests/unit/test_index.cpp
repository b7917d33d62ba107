// Index ops against plain reference loops: embedding, index_select, index_add, gather,
// scatter_add, one_hot; odd shapes, non-contiguous inputs, negative dims, empty tensors,
// int32 indices, bf16 values, determinism across thread counts, and the error messages.
#include <cstdint>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/index.h"
#include "tests/support/check.h"
#include "tests/support/ref_loops.h"

using namespace rv;
using namespace rv::test;

namespace {

// Deterministic pseudo-random integers in [0, n), as an int64 tensor.
Tensor rand_index(const Shape& shape, int64_t n, uint64_t seed) {
  std::vector<int64_t> v(size_t(shape_numel(shape)));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = int64_t((s >> 33) % uint64_t(n));
  }
  return from_vector(v, shape);
}

#ifdef _OPENMP
struct ThreadCount {
  int prev;
  explicit ThreadCount(int n) : prev(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(prev); }
};
#endif

}  // namespace

TEST_CASE("embedding picks rows, for any index shape and int32 or int64 indices") {
  Tensor w = test::test_noncontiguous({7, 5}, 1);
  Tensor idx = from_vector(std::vector<int64_t>{3, 0, 6, 3, 3, 1}, {2, 3});
  std::vector<double> wv = w.to_double_vector();
  for (DType it : {DType::i64, DType::i32}) {
    Tensor out = embedding(w, idx.to(it));
    REQUIRE(out.shape() == Shape{2, 3, 5});
    std::vector<double> ov = out.to_double_vector(), iv = idx.to_double_vector();
    for (int64_t s = 0; s < 6; ++s)
      for (int64_t c = 0; c < 5; ++c) CHECK(ov[s * 5 + c] == wv[int64_t(iv[s]) * 5 + c]);
  }
  // 0-d index -> (C); empty index -> (0, C)
  Tensor one = embedding(w, from_vector(std::vector<int64_t>{4}, {}));
  CHECK(one.shape() == Shape{5});
  CHECK(one.to_double_vector() == std::vector<double>(wv.begin() + 20, wv.begin() + 25));
  CHECK(embedding(w, zeros({0}, DType::i64)).shape() == Shape{0, 5});
  // bf16 rows are copied bit for bit
  Tensor wb = w.to(DType::bf16);
  CHECK(embedding(wb, idx).to_double_vector() == embedding(wb.to(DType::f32), idx).to_double_vector());
}

TEST_CASE("embedding backward sums the gradients of repeated indices") {
  Tensor w = zeros({4, 3}).requires_grad_();
  Tensor idx = from_vector(std::vector<int64_t>{2, 0, 2, 2}, {4});
  Tensor g = from_vector(std::vector<float>{1, 2, 3, 10, 20, 30, 100, 200, 300, 1000, 2000, 3000}, {4, 3});
  embedding(w, idx).backward(g);
  CHECK(w.grad().to_vector<float>() == std::vector<float>{10, 20, 30, 0, 0, 0, 1101, 2202, 3303, 0, 0, 0});
}

TEST_CASE("embedding errors name the op, the bad index and the range") {
  Tensor w = zeros({7, 5});
  CHECK_THROWS_WITH(embedding(w, from_vector(std::vector<int64_t>{1, 7}, {2})),
                    doctest::Contains("embedding: index 7 at position [1] is out of range for a weight with 7 rows "
                                      "(valid range [0, 7))"));
  CHECK_THROWS_WITH(embedding(w, from_vector(std::vector<int64_t>{-1}, {1})), doctest::Contains("index -1"));
  CHECK_THROWS_WITH(embedding(zeros({7}), from_vector(std::vector<int64_t>{1}, {1})), doctest::Contains("2-D"));
  CHECK_THROWS_WITH(embedding(w, zeros({2})), doctest::Contains("int64 or int32, got float32"));
}

TEST_CASE("index_select matches a reference loop on non-contiguous input, any dim") {
  const Shape xs{3, 5, 4};
  Tensor x = test::test_noncontiguous(xs, 2);
  std::vector<double> xv = x.to_double_vector();
  Tensor index = from_vector(std::vector<int64_t>{4, 0, 0, 2}, {4});
  for (int64_t dim : {0, 1, 2, -1, -2}) {
    int64_t d = dim < 0 ? dim + 3 : dim;
    std::vector<int64_t> iv;
    for (int64_t v : index.to_vector<int64_t>()) iv.push_back(v % xs[d]);
    Tensor idx = from_vector(iv, {4});
    Tensor out = index_select(x, dim, idx.to(DType::i32));
    Shape os = xs;
    os[d] = 4;
    REQUIRE(out.shape() == os);
    std::vector<double> ov = out.to_double_vector();
    for_each_coord(os, [&](const Shape& c) {
      Shape xc = c;
      xc[d] = iv[c[d]];
      REQUIRE(ov[flat_index(c, os)] == xv[flat_index(xc, xs)]);
    });
  }
  CHECK(index_select(x, 1, zeros({0}, DType::i64)).shape() == Shape{3, 0, 4});
  CHECK(index_select(zeros({0, 3}), 1, from_vector(std::vector<int64_t>{2, 1}, {2})).shape() == Shape{0, 2});
  CHECK_THROWS_WITH(index_select(x, 1, from_vector(std::vector<int64_t>{5}, {1})),
                    doctest::Contains("index_select: index 5 at position [0] is out of range for dim 1 of size 5"));
  CHECK_THROWS_WITH(index_select(x, 1, zeros({2, 2}, DType::i64)), doctest::Contains("must be 1-D"));
  CHECK_THROWS_WITH(index_select(x, 3, zeros({2}, DType::i64)), doctest::Contains("index_select: dim 3"));
}

TEST_CASE("index_add adds src slices into x along dim, out of place") {
  const Shape xs{3, 4, 2};
  Tensor x = test::test_tensor(xs, 3);
  Tensor src = test::test_noncontiguous({3, 5, 2}, 4);
  std::vector<int64_t> iv{3, 0, 3, 1, 3};
  Tensor out = index_add(x, 1, from_vector(iv, {5}), src);
  std::vector<double> ref = x.to_double_vector(), sv = src.to_double_vector();
  for_each_coord({3, 5, 2}, [&](const Shape& c) { ref[flat_index({c[0], iv[c[1]], c[2]}, xs)] += sv[flat_index(c, {3, 5, 2})]; });
  RV_EXPECT_CLOSE(out, from_vector(ref, xs), .rtol = 1e-6, .atol = 1e-6);
  CHECK(x.to_double_vector() != out.to_double_vector());  // x itself is unchanged
  CHECK_THROWS_WITH(index_add(x, 1, from_vector(iv, {5}), zeros({3, 4, 2})), doctest::Contains("index_add: src has shape"));
  CHECK_THROWS_WITH(index_add(x, 1, from_vector(iv, {5}), zeros({3, 5, 2}, DType::f64)),
                    doctest::Contains("differs from x dtype"));
}

TEST_CASE("gather matches a reference loop, with an index smaller than x in other dims") {
  const Shape xs{3, 5, 4};
  Tensor x = test::test_noncontiguous(xs, 5);
  std::vector<double> xv = x.to_double_vector();
  for (int64_t dim : {0, 1, 2, -1}) {
    int64_t d = dim < 0 ? dim + 3 : dim;
    for (Shape is : {Shape{3, 5, 4}, Shape{2, 3, 3}, Shape{3, 7, 4}}) {
      if (is[1] > xs[1] && d != 1) continue;  // only the gathered dim may be longer
      Tensor idx = rand_index(is, xs[d], 17 + uint64_t(d));
      Tensor out = gather(x, dim, idx);
      REQUIRE(out.shape() == is);
      std::vector<double> ov = out.to_double_vector();
      std::vector<int64_t> iv = idx.to_vector<int64_t>();
      for_each_coord(is, [&](const Shape& c) {
        Shape xc = c;
        xc[d] = iv[flat_index(c, is)];
        REQUIRE(ov[flat_index(c, is)] == xv[flat_index(xc, xs)]);
      });
    }
  }
  // non-contiguous int32 index
  Tensor idx_nc = rand_index({4, 3}, 3, 9).to(DType::i32).t();  // (3, 4)
  Tensor x2 = test::test_tensor({3, 3}, 6);
  Tensor out = gather(x2, 1, idx_nc);
  std::vector<double> ov = out.to_double_vector(), x2v = x2.to_double_vector(), iv = idx_nc.to_double_vector();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) CHECK(ov[i * 4 + j] == x2v[i * 3 + int64_t(iv[i * 4 + j])]);
  CHECK(gather(x, 1, zeros({3, 0, 4}, DType::i64)).shape() == Shape{3, 0, 4});
  CHECK_THROWS_WITH(gather(x, 1, from_vector(std::vector<int64_t>{0, 5}, {1, 2, 1})),
                    doctest::Contains("gather: index 5 at position [0, 1, 0] is out of range for dim 1 of size 5"));
  CHECK_THROWS_WITH(gather(x, 1, zeros({4, 1, 4}, DType::i64)), doctest::Contains("larger than x shape"));
  CHECK_THROWS_WITH(gather(x, 1, zeros({3, 1}, DType::i64)), doctest::Contains("same number of dims"));
}

TEST_CASE("scatter_add matches a reference loop, with src larger than the index") {
  const Shape xs{3, 5, 4}, ss{3, 7, 5};
  Tensor x = test::test_tensor(xs, 7);
  Tensor src = test::test_noncontiguous(ss, 8);
  std::vector<double> sv = src.to_double_vector();
  for (int64_t dim : {0, 1, -1}) {
    int64_t d = dim < 0 ? dim + 3 : dim;
    Shape is = d == 1 ? Shape{2, 7, 3} : Shape{3, 4, 4};
    Tensor idx = rand_index(is, xs[d], 23 + uint64_t(d));
    Tensor out = scatter_add(x, dim, idx, src);
    std::vector<double> ref = x.to_double_vector();
    std::vector<int64_t> iv = idx.to_vector<int64_t>();
    for_each_coord(is, [&](const Shape& c) {
      Shape oc = c;
      oc[d] = iv[flat_index(c, is)];
      ref[flat_index(oc, xs)] += sv[flat_index(c, ss)];
    });
    RV_EXPECT_CLOSE(out, from_vector(ref, xs), .rtol = 1e-6, .atol = 1e-6);
  }
  Tensor same = scatter_add(x, 1, zeros({3, 0, 4}, DType::i64), src);
  CHECK(same.to_double_vector() == x.to_double_vector());
  CHECK_THROWS_WITH(scatter_add(x, 1, zeros({3, 8, 4}, DType::i64), src), doctest::Contains("larger than src shape"));
  CHECK_THROWS_WITH(scatter_add(x, 1, rand_index({3, 2, 4}, 5, 1), src.to(DType::f64)),
                    doctest::Contains("scatter_add: src dtype float64 differs"));
  CHECK_THROWS_WITH(scatter_add(x, 0, from_vector(std::vector<int64_t>{3}, {1, 1, 1}), src),
                    doctest::Contains("scatter_add: index 3 at position [0, 0, 0] is out of range for dim 0 of size 3"));
}

TEST_CASE("scatter_add and index_add work on bf16 and int64 tensors") {
  Tensor x = from_vector(std::vector<double>{1, 2, 3}, {3}, DType::bf16);
  Tensor src = from_vector(std::vector<double>{0.5, 0.25, 4}, {3}, DType::bf16);
  Tensor idx = from_vector(std::vector<int64_t>{2, 2, 0}, {3});
  Tensor out = scatter_add(x, 0, idx, src);
  CHECK(out.dtype() == DType::bf16);
  CHECK(out.to_double_vector() == std::vector<double>{5, 2, 3.75});
  Tensor xi = from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  CHECK(index_add(xi, 0, idx, from_vector(std::vector<int64_t>{10, 20, 30}, {3})).to_vector<int64_t>() ==
        std::vector<int64_t>{31, 2, 33});
  CHECK_THROWS_WITH(scatter_add(zeros({3}, DType::boolean), 0, idx, zeros({3}, DType::boolean)),
                    doctest::Contains("cannot add into a bool"));
}

#ifdef _OPENMP
TEST_CASE("the adding kernels give the same bits for 1 and 2 threads") {
  // Many repeated targets, so the order of the additions matters in float32.
  Tensor x = test::test_tensor({64, 300}, 11);
  Tensor src = test::test_tensor({64, 4000}, 12, DType::f32, -100, 100);
  Tensor idx = rand_index({64, 4000}, 300, 13);
  Tensor idx1 = rand_index({4000}, 64, 14);
  Tensor src1 = test::test_tensor({4000, 300}, 15, DType::f32, -100, 100);
  std::vector<float> a, b, c, d;
  {
    ThreadCount one(1);
    a = scatter_add(x, 1, idx, src).to_vector<float>();
    c = index_add(x, 0, idx1, src1).to_vector<float>();
  }
  {
    ThreadCount two(2);
    b = scatter_add(x, 1, idx, src).to_vector<float>();
    d = index_add(x, 0, idx1, src1).to_vector<float>();
  }
  CHECK(a == b);
  CHECK(c == d);
}
#endif

TEST_CASE("one_hot") {
  Tensor idx = from_vector(std::vector<int64_t>{2, 0, 1, 2}, {2, 2});
  Tensor oh = one_hot(idx, 4);
  CHECK(oh.shape() == Shape{2, 2, 4});
  CHECK(oh.dtype() == DType::i64);
  CHECK(oh.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0});
  CHECK(one_hot(idx.to(DType::i32)).shape() == Shape{2, 2, 3});  // inferred: max + 1
  CHECK(one_hot(zeros({0}, DType::i64), 3).shape() == Shape{0, 3});
  CHECK_THROWS_WITH(one_hot(idx, 2), doctest::Contains("one_hot: index 2 at position [0, 0] is out of range"));
  CHECK_THROWS_WITH(one_hot(zeros({0}, DType::i64)), doctest::Contains("cannot infer num_classes"));
}

TEST_CASE("writing into an index after the forward pass is reported by backward") {
  Tensor x = ones({2, 3}).requires_grad_();
  Tensor idx = from_vector(std::vector<int64_t>{0, 2}, {2, 1});
  Tensor y = gather(x, 1, idx);
  idx.fill_(1.0);
  CHECK_THROWS_WITH(y.backward(ones({2, 1})), doctest::Contains("backward of 'gather'"));
  Tensor e = embedding(x, idx.view({2}));
  idx.fill_(0.0);
  CHECK_THROWS_WITH(e.backward(ones({2, 3})), doctest::Contains("backward of 'embedding'"));
}
