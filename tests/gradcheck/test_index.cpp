// Gradients of the index ops and masked_fill against f64 central finite differences.
#include "engine/ops/index.h"
#include "engine/ops/mask.h"
#include "tests/support/check.h"

using namespace rv;
using V = std::vector<Tensor>;

TEST_CASE("embedding: weight, with repeated indices") {
  Tensor idx = from_vector(std::vector<int64_t>{3, 1, 3, 0, 3, 1}, {2, 3});
  RV_GRADCHECK([&](const V& in) { return embedding(in[0], idx); }, V{test::grad_input({5, 4}, 1)});
}

TEST_CASE("index_select: x, with repeated indices, any dim") {
  Tensor idx = from_vector(std::vector<int64_t>{2, 0, 2, 3, 2}, {5});
  for (int64_t dim : {0, 1, -1})
    RV_GRADCHECK([&](const V& in) { return index_select(in[0], dim, idx); }, V{test::grad_input({4, 4, 4}, 2)});
}

TEST_CASE("index_add: x and src") {
  Tensor idx = from_vector(std::vector<int64_t>{1, 1, 0, 2}, {4});
  RV_GRADCHECK([&](const V& in) { return index_add(in[0], 1, idx, in[1]); },
               (V{test::grad_input({2, 3, 2}, 3), test::grad_input({2, 4, 2}, 4)}));
}

TEST_CASE("gather: x, with an index that repeats and is smaller than x") {
  Tensor idx = from_vector(std::vector<int64_t>{0, 4, 4, 1, 2, 2, 3, 0, 4, 4, 4, 1}, {2, 3, 2});
  RV_GRADCHECK([&](const V& in) { return gather(in[0], 1, idx); }, V{test::grad_input({3, 5, 3}, 5)});
  Tensor idx0 = from_vector(std::vector<int64_t>{2, 0, 2, 1}, {2, 2});
  RV_GRADCHECK([&](const V& in) { return gather(in[0], 0, idx0); }, V{test::grad_input({3, 2}, 6)});
}

TEST_CASE("scatter_add: x and src (src larger than the index)") {
  Tensor idx = from_vector(std::vector<int64_t>{0, 4, 4, 1, 2, 2, 3, 0, 4, 4, 4, 1}, {2, 3, 2});
  RV_GRADCHECK([&](const V& in) { return scatter_add(in[0], 1, idx, in[1]); },
               (V{test::grad_input({3, 5, 3}, 7), test::grad_input({2, 4, 3}, 8)}));
  RV_GRADCHECK([&](const V& in) { return scatter_add(in[0], -1, idx, in[1]); },
               (V{test::grad_input({2, 3, 5}, 9), test::grad_input({2, 3, 2}, 10)}));
}

TEST_CASE("masked_fill: x, with a broadcast mask") {
  Tensor mask = from_vector(std::vector<double>{1, 0, 0, 1, 1, 0}, {2, 1, 3}, DType::boolean);
  RV_GRADCHECK([&](const V& in) { return masked_fill(in[0], mask, -100.0); }, V{test::grad_input({2, 4, 3}, 11)});
}
