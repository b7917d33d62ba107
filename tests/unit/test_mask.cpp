// masked_fill against a reference loop: broadcast masks, non-contiguous x, bf16, empty
// tensors, the zero gradient where filled, and its errors.
#include "engine/ops/mask.h"
#include "tests/support/check.h"

using namespace rv;

TEST_CASE("masked_fill matches a reference loop with a broadcast mask") {
  Tensor x = test::test_noncontiguous({2, 3, 4}, 1);
  std::vector<double> mv{1, 0, 1, 1, 0, 0, 1, 0};  // (2, 1, 4)
  Tensor mask = from_vector(mv, {2, 1, 4}, DType::boolean);
  Tensor out = masked_fill(x, mask, -100.0);
  REQUIRE(out.shape() == x.shape());
  std::vector<double> xv = x.to_double_vector(), ov = out.to_double_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        int64_t k = (b * 3 + i) * 4 + j;
        CHECK(ov[k] == (mv[b * 4 + j] != 0 ? -100.0 : xv[k]));
      }
  // a lower-rank mask (a key-padding style mask over the last dim)
  Tensor m1 = from_vector(std::vector<double>{0, 0, 0, 1}, {4}, DType::boolean);
  std::vector<double> o1 = masked_fill(x, m1, 5.0).to_double_vector();
  for (int64_t k = 0; k < 24; ++k) CHECK(o1[k] == (k % 4 == 3 ? 5.0 : xv[k]));
  // bf16 keeps its dtype; the fill value is rounded to bf16
  Tensor xb = x.to(DType::bf16);
  Tensor ob = masked_fill(xb, mask, 0.1);
  CHECK(ob.dtype() == DType::bf16);
  CHECK(ob.to_double_vector()[0] == from_vector(std::vector<double>{0.1}, {1}, DType::bf16).item());
  CHECK(masked_fill(zeros({0, 4}), m1, 1.0).shape() == Shape{0, 4});
}

TEST_CASE("masked_fill backward is zero where filled") {
  Tensor x = ones({2, 2}).requires_grad_();
  Tensor mask = from_vector(std::vector<double>{1, 0, 0, 1}, {2, 2}, DType::boolean);
  masked_fill(x, mask, 3.0).backward(full({2, 2}, 2.0));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 2, 2, 0});
}

TEST_CASE("masked_fill errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(masked_fill(x, zeros({2, 3}), 1.0), doctest::Contains("masked_fill: mask must be bool, got float32"));
  CHECK_THROWS_WITH(masked_fill(x, zeros({3, 2}, DType::boolean), 1.0), doctest::Contains("masked_fill"));
  CHECK_THROWS_WITH(masked_fill(x, zeros({4, 2, 3}, DType::boolean), 1.0),
                    doctest::Contains("does not broadcast to x shape"));
}
