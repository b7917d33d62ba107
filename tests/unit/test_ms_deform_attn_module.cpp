// MultiScaleDeformableAttention (models/det): mmcv's parameter names and shapes, mmcv's
// initialisation (the direction grid of the offsets' bias, uniform attention after the softmax),
// the forward against the op called by hand (points and boxes, padding mask, query_pos, identity,
// value = query), and the error messages. The PyTorch comparison is in
// tests/fixtures/test_ms_deform_attn.cpp; the gradients in tests/gradcheck/test_ms_deform_attn.cpp.
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/mask.h"
#include "engine/ops/matmul.h"
#include "engine/ops/ms_deform_attn.h"
#include "engine/ops/softmax.h"
#include "models/det/ms_deform_attn_module.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

using Levels = std::vector<std::pair<int64_t, int64_t>>;

MSDeformAttnOptions small_options() {
  MSDeformAttnOptions o;
  o.embed_dims = 16, o.num_heads = 4, o.num_levels = 2, o.num_points = 3, o.dropout = 0.0;
  return o;
}

// Random weights in every projection (the init zeroes two of them).
void randomise(MultiScaleDeformableAttention& m, uint64_t seed) {
  autograd::NoGradGuard ng;
  for (auto& [name, p] : m.named_parameters()) p.copy_(test::test_tensor(p.shape(), seed++, p.dtype(), -0.3, 0.3));
}

}  // namespace

TEST_CASE("MultiScaleDeformableAttention: mmcv's parameter names, order and shapes") {
  Generator gen(1);
  MultiScaleDeformableAttention m(small_options(), gen);
  std::vector<std::pair<std::string, Shape>> want = {
      {"sampling_offsets.weight", {48, 16}}, {"sampling_offsets.bias", {48}}, {"attention_weights.weight", {24, 16}},
      {"attention_weights.bias", {24}},      {"value_proj.weight", {16, 16}}, {"value_proj.bias", {16}},
      {"output_proj.weight", {16, 16}},      {"output_proj.bias", {16}}};
  const auto sd = m.state_dict();
  REQUIRE(sd.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(sd.items()[i].first == want[i].first);
    CHECK(sd.items()[i].second.shape() == want[i].second);
  }
  MSDeformAttnOptions o = small_options();
  o.value_proj_ratio = 0.5;
  MultiScaleDeformableAttention half(o, gen);
  CHECK(half.value_proj->weight.shape() == Shape{8, 16});
  CHECK(half.output_proj->weight.shape() == Shape{16, 8});
}

TEST_CASE("MultiScaleDeformableAttention: mmcv's initialisation") {
  MSDeformAttnOptions o = small_options();
  o.num_heads = 8, o.embed_dims = 32;
  Generator gen(2);
  MultiScaleDeformableAttention m(o, gen);
  // Head h points at angle 2 pi h / 8, scaled so that the larger coordinate is +-1; point p is
  // (p + 1) times that, on every level.
  const double dirs[8][2] = {{1, 0}, {1, 1}, {0, 1}, {-1, 1}, {-1, 0}, {-1, -1}, {0, -1}, {1, -1}};
  const std::vector<double> bias = m.sampling_offsets->bias.to_double_vector();
  for (int64_t h = 0; h < 8; ++h)
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t p = 0; p < 3; ++p)
        for (int64_t k = 0; k < 2; ++k)
          CHECK(bias[size_t(((h * 2 + l) * 3 + p) * 2 + k)] == doctest::Approx(dirs[h][k] * double(p + 1)).epsilon(1e-6));
  for (double w : m.sampling_offsets->weight.to_double_vector()) CHECK(w == 0.0);
  for (const Tensor& t : {m.attention_weights->weight, m.attention_weights->bias, m.value_proj->bias, m.output_proj->bias})
    for (double w : t.to_double_vector()) CHECK(w == 0.0);
  // xavier_uniform: |w| <= sqrt(6 / (fan_in + fan_out)) and not all zero.
  const double bound = std::sqrt(6.0 / 64.0);
  double mx = 0;
  for (double w : m.value_proj->weight.to_double_vector()) mx = std::max(mx, std::fabs(w));
  CHECK(mx <= bound);
  CHECK(mx > 0.5 * bound);
}

TEST_CASE("MultiScaleDeformableAttention: forward equals the op called by hand") {
  const Levels lv = {{7, 5}, {3, 1}};
  const Tensor shapes = ms_deform_attn_spatial_shapes(lv), starts = ms_deform_attn_level_start(lv);
  Generator gen(3);
  MultiScaleDeformableAttention m(small_options(), gen);
  randomise(m, 10);
  const int64_t B = 2, Q = 5, S = 38, C = 16;
  const Tensor query = test::test_tensor({B, Q, C}, 20), value = test::test_tensor({B, S, C}, 21);
  const Tensor pos = test::test_tensor({B, Q, C}, 22), ident = test::test_tensor({B, Q, C}, 23);
  std::vector<double> mv = test::test_tensor({B, S}, 24).to_double_vector();
  for (double& x : mv) x = x > 0.3 ? 1.0 : 0.0;
  const Tensor mask = from_vector(mv, {B, S}, DType::boolean);
  auto by_hand = [&](const Tensor& ref, bool use_extras) {
    const Tensor q = use_extras ? add(query, pos) : query;
    Tensor v = linear(value, m.value_proj->weight, m.value_proj->bias);
    if (use_extras) v = masked_fill(v, mask.unsqueeze(-1), 0.0);
    v = v.reshape({B, S, 4, 4});
    const Tensor off = linear(q, m.sampling_offsets->weight, m.sampling_offsets->bias).reshape({B, Q, 4, 2, 3, 2});
    const Tensor aw = softmax(linear(q, m.attention_weights->weight, m.attention_weights->bias).reshape({B, Q, 4, 6}), -1)
                          .reshape({B, Q, 4, 2, 3});
    // Sampling locations element by element, from the definitions.
    const std::vector<double> o = off.to_double_vector(), r = ref.to_double_vector();
    const int64_t rd = ref.size(3);
    std::vector<double> loc(o.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t qi = 0; qi < Q; ++qi)
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t l = 0; l < 2; ++l)
            for (int64_t p = 0; p < 3; ++p)
              for (int64_t k = 0; k < 2; ++k) {
                const size_t i = size_t(((((b * Q + qi) * 4 + h) * 2 + l) * 3 + p) * 2 + k);
                const size_t ri = size_t(((b * Q + qi) * 2 + l) * rd);
                const double size = double(k == 0 ? lv[size_t(l)].second : lv[size_t(l)].first);
                loc[i] = rd == 2 ? r[ri + size_t(k)] + o[i] / size : r[ri + size_t(k)] + o[i] / 3.0 * r[ri + 2 + size_t(k)] * 0.5;
              }
    const Tensor out = ms_deform_attn(v, shapes, starts, from_vector(loc, off.shape(), DType::f32), aw);
    return add(linear(out, m.output_proj->weight, m.output_proj->bias), use_extras ? ident : query);
  };
  for (bool extras : {false, true})
    for (int64_t rd : {2, 4}) {
      CAPTURE(extras);
      CAPTURE(rd);
      const Tensor ref = test::test_tensor({B, Q, 2, rd}, 30 + uint64_t(rd), DType::f32, 0.1, 0.9);
      MSDeformAttnExtras ex;
      if (extras) ex.query_pos = pos, ex.identity = ident, ex.key_padding_mask = mask;
      RV_EXPECT_CLOSE(m.forward(query, value, ref, shapes, starts, ex), by_hand(ref, extras), 1e-5, 1e-6);
    }
  // value absent: the query is the value (self-attention over Q = S tokens).
  const Levels self_lv = {{5, 1}, {0, 3}};
  const Tensor ref = test::test_tensor({B, Q, 2, 2}, 40, DType::f32, 0.1, 0.9);
  RV_EXPECT_CLOSE(m.forward(query, Tensor(), ref, ms_deform_attn_spatial_shapes(self_lv), ms_deform_attn_level_start(self_lv)),
                  m.forward(query, query, ref, ms_deform_attn_spatial_shapes(self_lv), ms_deform_attn_level_start(self_lv)),
                  0.0, 0.0);
}

TEST_CASE("MultiScaleDeformableAttention: errors say what was expected") {
  Generator gen(4);
  MultiScaleDeformableAttention m(small_options(), gen);
  const Levels lv = {{7, 5}, {3, 1}};
  const Tensor shapes = ms_deform_attn_spatial_shapes(lv), starts = ms_deform_attn_level_start(lv);
  const Tensor q = zeros({1, 2, 16}), v = zeros({1, 38, 16}), ref = zeros({1, 2, 2, 2});
  CHECK_THROWS_WITH_AS(m.forward(zeros({1, 2, 8}), v, ref, shapes, starts),
                       doctest::Contains("expected `query` of shape (B, Q, 16)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.forward(q, v, zeros({1, 2, 2, 3}), shapes, starts),
                       doctest::Contains("expected `reference_points` of shape (1, 2, 2, 2 or 4)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.forward(q, zeros({1, 30, 16}), ref, shapes, starts),
                       doctest::Contains("`value` has S = 30 tokens but `spatial_shapes` sums to 38"),
                       std::invalid_argument);
  MSDeformAttnExtras ex;
  ex.key_padding_mask = zeros({1, 37}, DType::boolean);
  CHECK_THROWS_WITH_AS(m.forward(q, v, ref, shapes, starts, ex),
                       doctest::Contains("expected `key_padding_mask` of shape (1, 38) bool"), std::invalid_argument);
  MSDeformAttnOptions o = small_options();
  o.num_heads = 5;
  CHECK_THROWS_WITH_AS(MultiScaleDeformableAttention(o, gen), doctest::Contains("positive multiple of num_heads 5"),
                       std::invalid_argument);
}
