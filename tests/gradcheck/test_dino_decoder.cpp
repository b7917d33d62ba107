// The DINO transformer's layers against f64 central finite differences: one decoder layer (masked
// self-attention, deformable cross-attention into a padded memory with reference boxes, FFN, the three
// post-norms) with respect to its queries, positional queries, memory and reference boxes; one encoder
// layer with respect to its tokens, positions and reference points; and a one-layer decoder stack's
// logits and boxes (ref_point_head on the sine embedding, the final norm, the heads) with respect to
// its content queries and memory. (With two layers a finite difference would also move the next
// layer's DETACHED reference boxes, a path autograd leaves out on purpose; the look-forward-twice
// gradient is checked in tests/unit/test_dino_transformer.cpp.)
//
// Bilinear sampling has kinks where a sampling point crosses a pixel centre, and ReLU at 0; the
// inputs are fixed, and a central difference of step 1e-6 straddles a kink only if a point lies within
// 1e-6 of one, which these seeds do not (a straddle would show as a failure at one element, not pass).
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/ms_deform_attn.h"
#include "engine/ops/shape.h"
#include "models/det/dino_decoder.h"
#include "models/det/dino_encoder.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;
using test::grad_input;

namespace {

void randomise(nn::Module& m, uint64_t seed) {
  autograd::NoGradGuard ng;
  for (auto& [name, p] : m.named_parameters()) p.copy_(test::test_tensor(p.shape(), seed++, DType::f64, -0.4, 0.4));
}

const std::vector<std::pair<int64_t, int64_t>> kLevels = {{3, 4}, {2, 1}};  // S = 14

// (B, S) padding: image 1's last 3 tokens of level 0 (row 2, x 1..3) are padding
Tensor memory_mask() {
  std::vector<int64_t> m(28, 0);
  m[14 + 9] = m[14 + 10] = m[14 + 11] = 1;
  return from_vector(m, {2, 14}).to(DType::boolean);
}

}  // namespace

TEST_CASE("gradcheck DinoDecoderLayer: queries, query_pos, memory and reference boxes, with both masks") {
  DinoDecoderOptions o;
  o.embed_dim = 8, o.num_heads = 2, o.feedforward_dim = 12, o.num_levels = 2, o.num_points = 2, o.num_layers = 1;
  o.num_classes = 3;
  Generator gen(1);
  DinoDecoderLayer layer(o, gen);
  layer.to(DType::f64);
  randomise(layer, 10);
  const Tensor shapes = ms_deform_attn_spatial_shapes(kLevels), starts = ms_deform_attn_level_start(kLevels);
  const int64_t Q = 4;
  std::vector<int64_t> am(size_t(Q * Q), 0);
  am[0 * Q + 2] = am[0 * Q + 3] = am[1 * Q + 2] = am[1 * Q + 3] = am[2 * Q + 0] = am[3 * Q + 1] = 1;
  const Tensor attn_mask = from_vector(am, {Q, Q}).to(DType::boolean), mmask = memory_mask();
  std::vector<Tensor> in = {grad_input({2, Q, 8}, 1), grad_input({2, Q, 8}, 2), grad_input({2, 14, 8}, 3),
                            grad_input({2, Q, 2, 4}, 4, 0.2, 0.7)};
  RV_GRADCHECK([&](const std::vector<Tensor>& v) {
                 return layer.forward(v[0], v[1], v[2], v[3], shapes, starts, mmask, attn_mask);
               },
               in);
}

TEST_CASE("gradcheck DinoEncoderLayer: tokens, positions and reference points, with padding") {
  DinoEncoderOptions o;
  o.embed_dim = 8, o.num_heads = 2, o.feedforward_dim = 12, o.num_levels = 2, o.num_points = 2, o.num_layers = 1;
  Generator gen(2);
  DinoEncoderLayer layer(o, gen);
  layer.to(DType::f64);
  randomise(layer, 40);
  const Tensor shapes = ms_deform_attn_spatial_shapes(kLevels), starts = ms_deform_attn_level_start(kLevels);
  const Tensor mmask = memory_mask();
  std::vector<Tensor> in = {grad_input({2, 14, 8}, 5), grad_input({2, 14, 8}, 6), grad_input({2, 14, 2, 2}, 7, 0.1, 0.9)};
  RV_GRADCHECK([&](const std::vector<Tensor>& v) { return layer.forward(v[0], v[1], v[2], shapes, starts, mmask); },
               in);
}

TEST_CASE("gradcheck DinoTransformerDecoder (one layer): logits and boxes w.r.t. tgt and memory") {
  DinoDecoderOptions o;
  o.embed_dim = 8, o.num_heads = 2, o.feedforward_dim = 12, o.num_levels = 2, o.num_points = 2, o.num_layers = 1;
  o.num_classes = 3;
  Generator gen(3);
  DinoTransformerDecoder dec(o, gen);
  dec.to(DType::f64);
  randomise(dec, 70);
  const Tensor shapes = ms_deform_attn_spatial_shapes(kLevels), starts = ms_deform_attn_level_start(kLevels);
  const Tensor mmask = memory_mask();
  const Tensor ratios = from_vector(std::vector<double>{1, 1, 1, 1, 1, 2.0 / 3, 1, 1}, {2, 2, 2}, DType::f64);
  const Tensor ref = test::test_tensor({2, 3, 4}, 8, DType::f64, 0.2, 0.7);
  std::vector<Tensor> in = {grad_input({2, 3, 8}, 9), grad_input({2, 14, 8}, 10)};
  RV_GRADCHECK([&](const std::vector<Tensor>& v) {
                 const DinoDecoderOutput out = dec.forward(v[0], ref, v[1], mmask, shapes, starts, ratios);
                 return cat({out.logits.reshape({-1}), out.boxes.reshape({-1})}, 0);
               },
               in);
}
