// ms_deform_attn: the gradients w.r.t. value, sampling_locations and attention_weights against f64
// central finite differences, on 1 to 4 levels of odd sizes (7x5, 3x1, 1x1, 2x3).
//
// Bilinear sampling is not differentiable where a location crosses a pixel centre (x * W - 0.5 an
// integer: the pair of taps changes; this includes the lines where a tap enters or leaves the map).
// A central difference that straddles such a kink measures the average of two slopes, so the
// locations are drawn at random and then moved at least 0.05 pixel away from every kink. Locations
// outside [0, 1] are kept (the zero padding is smooth away from the kinks).
#include <cmath>
#include <vector>

#include "engine/ops/ms_deform_attn.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

namespace {

using Levels = std::vector<std::pair<int64_t, int64_t>>;

// (B, Q, NH, L, P, 2) f64 leaf in [-0.2, 1.2], each coordinate at least 0.05 pixel from a kink.
Tensor smooth_locations(const Levels& lv, int64_t B, int64_t Q, int64_t NH, int64_t P, uint64_t seed) {
  const int64_t L = int64_t(lv.size());
  std::vector<double> v = test::test_tensor({B, Q, NH, L, P, 2}, seed, DType::f64, -0.2, 1.2).to_double_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t l = int64_t(i / 2 / size_t(P)) % L;
    const double size = double(i % 2 == 0 ? lv[size_t(l)].second : lv[size_t(l)].first);  // W for x, H for y
    const double pix = v[i] * size - 0.5;
    const double dist = pix - std::round(pix);  // in (-0.5, 0.5]
    if (std::fabs(dist) < 0.05) v[i] += (dist < 0 ? -0.1 : 0.1) / size;
  }
  return from_vector(v, {B, Q, NH, L, P, 2}, DType::f64).requires_grad_();
}

void check(const Levels& lv, int64_t B, int64_t Q, int64_t NH, int64_t HD, int64_t P, uint64_t seed) {
  int64_t S = 0;
  for (auto [h, w] : lv) S += h * w;
  const int64_t L = int64_t(lv.size());
  const Tensor shapes = ms_deform_attn_spatial_shapes(lv), starts = ms_deform_attn_level_start(lv);
  std::vector<Tensor> in = {grad_input({B, S, NH, HD}, seed), smooth_locations(lv, B, Q, NH, P, seed + 1),
                            grad_input({B, Q, NH, L, P}, seed + 2, 0.0, 1.0)};
  RV_GRADCHECK([&](const std::vector<Tensor>& v) { return ms_deform_attn(v[0], shapes, starts, v[1], v[2]); }, in);
}

}  // namespace

TEST_CASE("gradcheck ms_deform_attn: one level") { check({{7, 5}}, 2, 3, 2, 3, 2, 1); }

TEST_CASE("gradcheck ms_deform_attn: two and four levels, 1x1 and 3x1 maps") {
  check({{3, 1}, {1, 1}}, 1, 4, 3, 2, 3, 2);
  check({{7, 5}, {3, 1}, {1, 1}, {2, 3}}, 2, 2, 2, 4, 2, 3);
}
