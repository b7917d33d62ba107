// interpolate: backward of every mode (nearest, linear, bilinear, bicubic, with align_corners
// and antialias, up and down) against f64 central finite differences.
#include "engine/ops/interpolate.h"
#include "tests/support/check.h"

using namespace rv;

namespace {
void check(const InterpolateOptions& o, const Shape& shape, uint64_t seed) {
  std::vector<Tensor> inputs = {test::grad_input(shape, seed)};
  auto f = [&](const std::vector<Tensor>& in) { return interpolate(in[0], o); };
  RV_GRADCHECK(f, inputs);
}
}  // namespace

TEST_CASE("gradcheck interpolate, every mode") {
  uint64_t seed = 1;
  check({.size = {9, 4}}, {1, 2, 5, 7}, seed++);
  check({.scale_factor = {1.7, 0.6}}, {1, 2, 5, 7}, seed++);
  check({.size = {11}, .mode = "linear"}, {2, 2, 7}, seed++);
  check({.size = {4}, .mode = "linear", .align_corners = true}, {2, 2, 7}, seed++);
  for (const char* mode : {"bilinear", "bicubic"})
    for (bool align : {false, true})
      for (bool aa : {false, true}) {
        CAPTURE(mode);
        CAPTURE(align);
        CAPTURE(aa);
        check({.size = {9, 4}, .mode = mode, .align_corners = align, .antialias = aa}, {1, 2, 5, 7}, seed++);
        check({.size = {3, 2}, .mode = mode, .align_corners = align, .antialias = aa}, {1, 2, 5, 7}, seed++);
      }
  check({.scale_factor = {0.5, 1.5}, .mode = "bicubic", .antialias = true}, {2, 1, 6, 5}, seed++);
}
