// ms_deform_attn: the gradients w.r.t. value, sampling_locations and attention_weights against f64
// central finite differences, on 1 to 4 levels of odd sizes (7x5, 3x1, 1x1, 2x3); and the
// MultiScaleDeformableAttention module (models/det) w.r.t. its query, value and reference points.
//
// Bilinear sampling is not differentiable where a location crosses a pixel centre (x * W - 0.5 an
// integer: the pair of taps changes; this includes the lines where a tap enters or leaves the map).
// A central difference that straddles such a kink measures the average of two slopes, so the
// locations are drawn at random and then moved at least 0.05 pixel away from every kink. Locations
// outside [0, 1] are kept (the zero padding is smooth away from the kinks).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/ms_deform_attn.h"
#include "models/det/ms_deform_attn_module.h"
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

// The smallest distance, in pixels, from a sampling point of the module to a bilinear kink
// (x * W - 0.5 an integer), the locations computed from the definitions (mmcv's forward).
double min_kink_distance(models::det::MultiScaleDeformableAttention& m, const Tensor& query, const Tensor& ref,
                         const Levels& lv) {
  autograd::NoGradGuard ng;
  const int64_t B = query.size(0), Q = query.size(1), NH = m.options().num_heads, L = int64_t(lv.size());
  const int64_t P = m.options().num_points, rd = ref.size(3);
  const std::vector<double> off = m.sampling_offsets->forward(query).to_double_vector(), r = ref.to_double_vector();
  double best = 1.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t q = 0; q < Q; ++q)
      for (int64_t h = 0; h < NH; ++h)
        for (int64_t l = 0; l < L; ++l)
          for (int64_t p = 0; p < P; ++p)
            for (int64_t k = 0; k < 2; ++k) {
              const double o = off[size_t(((((b * Q + q) * NH + h) * L + l) * P + p) * 2 + k)];
              const size_t ri = size_t(((b * Q + q) * L + l) * rd);
              const double size = double(k == 0 ? lv[size_t(l)].second : lv[size_t(l)].first);
              const double x = rd == 2 ? r[ri + size_t(k)] + o / size
                                       : r[ri + size_t(k)] + o / double(P) * r[ri + 2 + size_t(k)] * 0.5;
              const double pix = x * size - 0.5;
              best = std::min(best, std::fabs(pix - std::round(pix)));
            }
  return best;
}

}  // namespace

TEST_CASE("gradcheck ms_deform_attn: one level") { check({{7, 5}}, 2, 3, 2, 3, 2, 1); }

TEST_CASE("gradcheck ms_deform_attn: two and four levels, 1x1 and 3x1 maps") {
  check({{3, 1}, {1, 1}}, 1, 4, 3, 2, 3, 2);
  check({{7, 5}, {3, 1}, {1, 1}, {2, 3}}, 2, 2, 2, 4, 2, 3);
}

TEST_CASE("gradcheck MultiScaleDeformableAttention: query, value and reference points (2-d and 4-d)") {
  // The module in f64 with random weights: offsets of up to a few pixels, so the points spread over
  // the maps. The inputs are fixed; the test first checks that no sampling point lies within 1e-3
  // pixel of a kink, far beyond the 1e-6 finite-difference step.
  const Levels lv = {{7, 5}, {3, 1}};
  const Tensor shapes = ms_deform_attn_spatial_shapes(lv), starts = ms_deform_attn_level_start(lv);
  models::det::MSDeformAttnOptions o;
  o.embed_dims = 8, o.num_heads = 2, o.num_levels = 2, o.num_points = 2, o.dropout = 0.0;
  Generator gen(5);
  auto m = std::make_shared<models::det::MultiScaleDeformableAttention>(o, gen);
  m->to(DType::f64);
  {
    autograd::NoGradGuard ng;
    uint64_t seed = 50;
    for (auto& [name, p] : m->named_parameters()) p.copy_(test::test_tensor(p.shape(), seed++, DType::f64, -0.5, 0.5));
  }
  for (int64_t rd : {2, 4}) {
    CAPTURE(rd);
    std::vector<Tensor> in = {grad_input({2, 3, 8}, 60), grad_input({2, 38, 8}, 61),
                              grad_input({2, 3, 2, rd}, 62, 0.2, 0.7)};
    CHECK(min_kink_distance(*m, in[0], in[2], lv) > 1e-3);
    RV_GRADCHECK([&](const std::vector<Tensor>& v) { return m->forward(v[0], v[1], v[2], shapes, starts); }, in);
  }
}
