// rope: rope_apply (x and angles) and rope_angles (freqs and pos) against f64 finite differences,
// alone and chained as RoPE-Mixed uses them.
#include "engine/ops/rope.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

TEST_CASE("gradcheck rope_apply: x and per-head angles, CLS skipped") {
  std::vector<Tensor> in = {grad_input({2, 3, 5, 6}, 1), grad_input({3, 4, 3}, 2, -3.0, 3.0)};
  RV_GRADCHECK([](const std::vector<Tensor>& v) { return rope_apply(v[0], v[1], 1); }, in);
}

TEST_CASE("gradcheck rope_apply: angles shared by every head, no skip") {
  std::vector<Tensor> in = {grad_input({2, 3, 4, 4}, 3), grad_input({1, 4, 2}, 4, -3.0, 3.0)};
  RV_GRADCHECK([](const std::vector<Tensor>& v) { return rope_apply(v[0], v[1]); }, in);
}

TEST_CASE("gradcheck rope_angles: freqs and positions") {
  std::vector<Tensor> in = {grad_input({2, 3, 4}, 5), grad_input({6, 2}, 6, 0.0, 5.0)};
  RV_GRADCHECK([](const std::vector<Tensor>& v) { return rope_angles(v[0], v[1]); }, in);
}

TEST_CASE("gradcheck RoPE-Mixed chain: x and freqs through rope_angles into rope_apply") {
  Tensor pos = rope_grid_positions(2, 3).to(DType::f64);
  std::vector<Tensor> in = {grad_input({2, 2, 7, 8}, 7), grad_input({2, 2, 4}, 8)};
  RV_GRADCHECK([pos](const std::vector<Tensor>& v) { return rope_apply(v[0], rope_angles(v[1], pos), 1); }, in);
}
