// The DINO transformer's parts (models/det): the geometry (valid ratios, encoder reference points,
// per-pixel proposals) against values worked out by hand; topk_indices' order and ties;
// TorchMultiheadAttention against a plain loop with both masks and a non-contiguous input; the
// decoder's head sharing and initialisation, its look-forward-twice gradient path, and the
// denoising mask (matching queries never see the denoising ones); the transformer's detrex names,
// its init, non-contiguous features, a 1 x 1 level, an empty denoising part, and its error messages. The comparison with PyTorch is tests/fixtures/test_dino_transformer.cpp,
// the gradients of a decoder layer tests/gradcheck/test_dino_decoder.cpp.
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/ms_deform_attn.h"
#include "engine/ops/reduce.h"
#include "models/det/detr_multihead_attention.h"
#include "models/det/dino_geometry.h"
#include "models/det/dino_query_selection.h"
#include "models/det/dino_transformer.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

// (B, H, W) bool mask: image b valid in its top-left vh[b] x vw[b] rectangle.
Tensor padding_mask(int64_t H, int64_t W, const std::vector<std::pair<int64_t, int64_t>>& valid) {
  const int64_t B = int64_t(valid.size());
  Tensor m = empty({B, H, W}, DType::boolean);
  bool* p = m.data<bool>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) p[(b * H + y) * W + x] = y >= valid[size_t(b)].first || x >= valid[size_t(b)].second;
  return m;
}

void randomise(nn::Module& m, uint64_t seed, double scale = 0.3) {
  autograd::NoGradGuard ng;
  for (auto& [name, p] : m.named_parameters()) p.copy_(test::test_tensor(p.shape(), seed++, p.dtype(), -scale, scale));
}

DinoTransformerOptions tiny() {
  DinoTransformerOptions o;
  o.embed_dim = 16, o.num_heads = 2, o.feedforward_dim = 24, o.encoder_layers = 1, o.decoder_layers = 2;
  o.num_levels = 2, o.num_points = 2, o.num_classes = 3, o.num_queries = 6;
  return o;
}

}  // namespace

TEST_CASE("valid_ratios and encoder_reference_points: pixel centres over the valid part") {
  // level 0: 4 x 5, image 1 valid 3 x 2; level 1: 2 x 3, image 1 valid 2 x 1
  const std::vector<Tensor> masks = {padding_mask(4, 5, {{4, 5}, {3, 2}}), padding_mask(2, 3, {{2, 3}, {2, 1}})};
  const Tensor r = valid_ratios(masks);
  CHECK(r.shape() == Shape{2, 2, 2});
  const std::vector<double> rv = r.to_double_vector();
  const std::vector<double> expect = {1, 1, 1, 1, 2.0 / 5, 3.0 / 4, 1.0 / 3, 1};
  for (size_t i = 0; i < rv.size(); ++i) CHECK(rv[i] == doctest::Approx(expect[i]).epsilon(1e-6));

  const Tensor ref = encoder_reference_points({{4, 5}, {2, 3}}, r);  // (B, S, L, 2)
  CHECK(ref.shape() == Shape{2, 26, 2, 2});
  const std::vector<double> v = ref.to_double_vector();
  auto at = [&](int64_t b, int64_t s, int64_t l, int64_t k) { return v[size_t(((b * 26 + s) * 2 + l) * 2 + k)]; };
  // image 1, level 0 pixel (y 1, x 1): centre (1.5 / (0.4 * 5), 1.5 / (0.75 * 4)) = (0.75, 0.5), then
  // times each level's ratios: level 0 (0.3, 0.375), level 1 (0.25, 0.5)
  const int64_t s = 1 * 5 + 1;
  CHECK(at(1, s, 0, 0) == doctest::Approx(0.3).epsilon(1e-6));
  CHECK(at(1, s, 0, 1) == doctest::Approx(0.375).epsilon(1e-6));
  CHECK(at(1, s, 1, 0) == doctest::Approx(0.25).epsilon(1e-6));
  CHECK(at(1, s, 1, 1) == doctest::Approx(0.5).epsilon(1e-6));
  // image 0, level 1 pixel (y 1, x 2): (2.5 / 3, 1.5 / 2) on both levels (ratios 1)
  CHECK(at(0, 20 + 5, 0, 0) == doctest::Approx(2.5 / 3).epsilon(1e-6));
  CHECK(at(0, 20 + 5, 1, 1) == doctest::Approx(0.75).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(valid_ratios({zeros({2, 3, 3})}), doctest::Contains("valid_ratios: expected bool masks"),
                       std::invalid_argument);
}

TEST_CASE("encoder_proposals: boxes per pixel, logits, inf where padded or at the border") {
  // levels 3 x 4 (wh 0.05), 1 x 2 (0.1), then four 1 x 1 (0.2, 0.4, 0.8, 1.6: the last is outside
  // (0.01, 0.99) everywhere); image 1 valid 2 x 4 on level 0, 1 x 1 on level 1
  const LevelShapes shapes = {{3, 4}, {1, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
  const int64_t S = 12 + 2 + 4;
  std::vector<int64_t> padded(size_t(2 * S), 0);
  for (int64_t x = 0; x < 4; ++x) padded[size_t(S + 2 * 4 + x)] = 1;  // image 1, level 0, row 2
  padded[size_t(S + 13)] = 1;                                          // image 1, level 1, x 1
  const Tensor mask = from_vector(padded, {2, S}).to(DType::boolean);
  const EncoderProposals p = encoder_proposals(mask, shapes);
  CHECK(p.proposals.shape() == Shape{2, S, 4});
  CHECK(p.keep.shape() == Shape{2, S});
  const std::vector<double> v = p.proposals.to_double_vector();
  const std::vector<double> keep = p.keep.to(DType::f32).to_double_vector();
  auto logit = [](double q) { return std::log(q / (1 - q)); };
  // image 0, level 0, pixel (y 2, x 3): ((3.5) / 4, 2.5 / 3, .05, .05)
  const size_t a = size_t(2 * 4 + 3) * 4;
  CHECK(v[a] == doctest::Approx(logit(3.5 / 4)).epsilon(1e-5));
  CHECK(v[a + 1] == doctest::Approx(logit(2.5 / 3)).epsilon(1e-5));
  CHECK(v[a + 2] == doctest::Approx(logit(0.05)).epsilon(1e-5));
  // image 1, level 0, pixel (y 1, x 0): valid height 2 -> (0.5 / 4, 1.5 / 2)
  const size_t b = size_t(S + 4) * 4;
  CHECK(v[b] == doctest::Approx(logit(0.125)).epsilon(1e-5));
  CHECK(v[b + 1] == doctest::Approx(logit(0.75)).epsilon(1e-5));
  // level 1 of image 1: valid width 1 -> cx 0.5 at x 0; x 1 is padding
  CHECK(v[size_t(S + 12) * 4] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(std::isinf(v[size_t(S + 13) * 4]));
  // level 4 (wh 0.8) kept, level 5 (wh 1.6) not, in both images; padding not kept
  for (int64_t img = 0; img < 2; ++img) {
    CHECK(keep[size_t(img * S + 16)] == 1.0);
    CHECK(v[size_t(img * S + 16) * 4 + 3] == doctest::Approx(logit(0.8)).epsilon(1e-5));
    CHECK(keep[size_t(img * S + 17)] == 0.0);
    for (int k = 0; k < 4; ++k) CHECK(std::isinf(v[size_t(img * S + 17) * 4 + size_t(k)]));
  }
  int kept = 0;
  for (double k : keep) kept += k == 1.0;
  CHECK(kept == 2 * S - 4 - 1 - 2);  // 4 + 1 padded pixels, one 1.6-box per image
  CHECK_THROWS_WITH_AS(encoder_proposals(zeros({2, S + 1}).to(DType::boolean), shapes),
                       doctest::Contains("encoder_proposals: expected a bool mask_flatten (B, 18)"),
                       std::invalid_argument);
}

TEST_CASE("inverse_sigmoid: the logit, clamped at eps, with its gradient") {
  const Tensor x = from_vector(std::vector<double>{0.0, 0.0005, 0.25, 0.5, 0.9, 1.0, 1.5}, {7}, DType::f64).requires_grad_();
  const Tensor y = inverse_sigmoid(x);
  const std::vector<double> v = y.to_double_vector();
  const double lo = std::log(1e-3);  // x = 0: clamp(x, eps) / (1 - x) = eps / 1
  CHECK(v[0] == doctest::Approx(lo));
  CHECK(v[1] == doctest::Approx(std::log(1e-3 / 0.9995)));
  CHECK(v[2] == doctest::Approx(std::log(1.0 / 3)));
  CHECK(v[3] == doctest::Approx(0.0));
  CHECK(v[5] == doctest::Approx(-lo));
  CHECK(v[6] == doctest::Approx(-lo));
  sum(y).backward();
  const std::vector<double> g = x.grad().to_double_vector();
  CHECK(g[2] == doctest::Approx(1.0 / 0.25 + 1.0 / 0.75));
  CHECK(g[6] == 0.0);
}

TEST_CASE("topk_indices: decreasing order, ties by the lower index, NaN first as torch.topk") {
  const Tensor s = from_vector(std::vector<double>{0.5, 2.0, NAN, 2.0, -1.0, 0.5, 7.0, 3.0, 3.0, 1.0}, {2, 5}, DType::f32);
  const Tensor k = topk_indices(s, 4);
  CHECK(k.dtype() == DType::i64);
  CHECK(k.to_vector<int64_t>() == std::vector<int64_t>{2, 1, 3, 0, 1, 2, 3, 4});
  CHECK(topk_indices(s, 0).shape() == Shape{2, 0});
  CHECK_THROWS_WITH_AS(topk_indices(s, 6), doctest::Contains("topk_indices: expected scores (B, S) and 0 <= k <= S"),
                       std::invalid_argument);
}

TEST_CASE("TorchMultiheadAttention equals a plain loop, with attn_mask and key_padding_mask") {
  const int64_t B = 2, Nq = 5, Nk = 4, C = 6, NH = 3, HD = 2;
  Generator gen(7);
  TorchMultiheadAttention m(C, NH, 0.0, gen);
  randomise(m, 20, 0.5);
  const Tensor q = test::test_noncontiguous({B, Nq, C}, 1), k = test::test_tensor({B, Nk, C}, 2),
               v = test::test_tensor({B, Nk, C}, 3);
  std::vector<int64_t> am(size_t(Nq * Nk), 0), kp(size_t(B * Nk), 0);
  am[0 * Nk + 1] = am[2 * Nk + 0] = am[2 * Nk + 3] = am[4 * Nk + 2] = 1;
  kp[1 * Nk + 3] = 1;
  const Tensor attn_mask = from_vector(am, {Nq, Nk}).to(DType::boolean);
  const Tensor kpm = from_vector(kp, {B, Nk}).to(DType::boolean);
  const Tensor out = m.forward(q, k, v, attn_mask, kpm);
  CHECK(out.shape() == Shape{B, Nq, C});

  // the reference: project, per head softmax over the allowed keys, combine, out_proj
  const std::vector<double> W = m.in_proj_weight.to_double_vector(), bias = m.in_proj_bias.to_double_vector();
  const std::vector<double> Wo = m.out_proj->weight.to_double_vector(), bo = m.out_proj->bias.to_double_vector();
  const std::vector<double> qv = q.contiguous().to_double_vector(), kv = k.to_double_vector(), vv = v.to_double_vector();
  auto proj = [&](const std::vector<double>& x, int64_t n, int64_t blk) {
    std::vector<double> y(size_t(B * n * C));
    for (int64_t r = 0; r < B * n; ++r)
      for (int64_t o = 0; o < C; ++o) {
        double acc = bias[size_t(blk * C + o)];
        for (int64_t i = 0; i < C; ++i) acc += x[size_t(r * C + i)] * W[size_t((blk * C + o) * C + i)];
        y[size_t(r * C + o)] = acc;
      }
    return y;
  };
  const std::vector<double> Pq = proj(qv, Nq, 0), Pk = proj(kv, Nk, 1), Pv = proj(vv, Nk, 2);
  std::vector<double> expect(size_t(B * Nq * C));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Nq; ++i) {
      std::vector<double> heads(size_t(C), 0.0);
      for (int64_t h = 0; h < NH; ++h) {
        std::vector<double> s(static_cast<size_t>(Nk));
        double mx = -INFINITY;
        for (int64_t j = 0; j < Nk; ++j) {
          double d = 0;
          for (int64_t e = 0; e < HD; ++e) d += Pq[size_t((b * Nq + i) * C + h * HD + e)] * Pk[size_t((b * Nk + j) * C + h * HD + e)];
          s[size_t(j)] = (am[size_t(i * Nk + j)] || kp[size_t(b * Nk + j)]) ? -INFINITY : d / std::sqrt(double(HD));
          mx = std::max(mx, s[size_t(j)]);
        }
        double z = 0;
        for (auto& x : s) z += (x = std::exp(x - mx));
        for (int64_t j = 0; j < Nk; ++j)
          for (int64_t e = 0; e < HD; ++e) heads[size_t(h * HD + e)] += s[size_t(j)] / z * Pv[size_t((b * Nk + j) * C + h * HD + e)];
      }
      for (int64_t o = 0; o < C; ++o) {
        double acc = bo[size_t(o)];
        for (int64_t c = 0; c < C; ++c) acc += heads[size_t(c)] * Wo[size_t(o * C + c)];
        expect[size_t((b * Nq + i) * C + o)] = acc;
      }
    }
  RV_EXPECT_CLOSE(out, from_vector(expect, {B, Nq, C}), .rtol = 1e-5, .atol = 1e-5);

  // PyTorch's names and order
  std::vector<std::string> names;
  for (auto& [n, t] : m.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  CHECK_THROWS_WITH_AS(m.forward(q, k, v, from_vector(am, {Nq, Nk})), doctest::Contains("MultiheadAttention: expected a bool attn_mask (5, 4)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.forward(q, k, v, Tensor(), attn_mask), doctest::Contains("expected a bool key_padding_mask (2, 4)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.forward(q.narrow(2, 0, 4), k, v), doctest::Contains("expected `query` (B, Nq, 6)"),
                       std::invalid_argument);
}

TEST_CASE("DinoTransformer: detrex's names, DINO's head sharing and initialisation") {
  Generator gen(2);
  DinoTransformer model(tiny(), gen);
  std::set<std::string> keys;
  for (auto& [n, t] : model.state_dict()) keys.insert(n);
  for (const char* k :
       {"encoder.layers.0.attentions.0.sampling_offsets.weight", "encoder.layers.0.ffns.0.layers.0.0.weight",
        "encoder.layers.0.ffns.0.layers.1.bias", "encoder.layers.0.norms.1.weight",
        "decoder.layers.1.attentions.0.attn.in_proj_weight", "decoder.layers.1.attentions.0.attn.out_proj.bias",
        "decoder.layers.0.attentions.1.value_proj.weight", "decoder.layers.0.norms.2.bias",
        "decoder.ref_point_head.layers.1.weight", "decoder.norm.weight", "decoder.class_embed.0.bias",
        "decoder.class_embed.2.weight", "decoder.bbox_embed.1.layers.2.bias", "decoder.bbox_embed.2.layers.0.weight",
        "level_embeds", "tgt_embed.weight", "enc_output.weight", "enc_output_norm.bias"})
    CHECK_MESSAGE(keys.count(k) == 1, k);
  CHECK(keys.count("decoder.class_embed.3.weight") == 0);
  // shared decoder heads: listed under every index, trained once
  auto& dec = *model.decoder;
  CHECK(&dec.class_head(0) == &dec.class_head(1));
  CHECK(&dec.bbox_head(0) == &dec.bbox_head(1));
  CHECK(&dec.class_head(2) != &dec.class_head(0));
  int64_t unshared = 0;
  {
    DinoTransformerOptions o = tiny();
    o.dec_pred_class_embed_share = o.dec_pred_bbox_embed_share = false;
    Generator g2(2);
    DinoTransformer separate(o, g2);
    CHECK(&separate.decoder->class_head(0) != &separate.decoder->class_head(1));
    unshared = separate.num_parameters();
  }
  const int64_t C = 16, per_class = C * 3 + 3, per_box = 2 * (C * C + C) + 4 * C + 4;
  CHECK(unshared - model.num_parameters() == per_class + per_box);
  // DINO's init: prior 0.01 on every class logit, a zero last box layer, N(0, 1) level embeddings
  for (size_t j = 0; j < 3; ++j) {
    for (double b : dec.class_head(j).bias.to_double_vector()) CHECK(b == doctest::Approx(-std::log(99.0)));
    for (double w : dec.bbox_head(j).layer(2).weight.to_double_vector()) CHECK(w == 0.0);
    for (double w : dec.bbox_head(j).layer(2).bias.to_double_vector()) CHECK(w == 0.0);
  }
  CHECK(max(model.level_embeds).to_double_vector()[0] > 0.5);
}

namespace {

struct TinyInputs {
  std::vector<Tensor> feats, masks, pos;
};

TinyInputs tiny_inputs(uint64_t seed) {
  TinyInputs in;
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{5, 6}, {3, 3}};
  for (size_t l = 0; l < 2; ++l) {
    const auto [H, W] = sizes[l];
    in.feats.push_back(test::test_tensor({2, 16, H, W}, seed + l));
    in.pos.push_back(test::test_tensor({2, 16, H, W}, seed + 10 + l));
    in.masks.push_back(l == 0 ? padding_mask(H, W, {{5, 6}, {4, 4}}) : padding_mask(H, W, {{3, 3}, {2, 2}}));
  }
  return in;
}

}  // namespace

TEST_CASE("DinoTransformer: denoising queries in front, kept apart by the mask") {
  Generator gen(4);
  DinoTransformer model(tiny(), gen);
  randomise(model, 100);
  const TinyInputs in = tiny_inputs(30);
  const int64_t Qdn = 4, K = 6, Q = Qdn + K;
  std::vector<int64_t> m(size_t(Q * Q), 0);
  for (int64_t i = Qdn; i < Q; ++i)
    for (int64_t j = 0; j < Qdn; ++j) m[size_t(i * Q + j)] = 1;  // matching queries do not see denoising ones
  const Tensor mask = from_vector(m, {Q, Q}).to(DType::boolean);
  DinoDenoisingQueries dn{test::test_tensor({2, Qdn, 16}, 40), test::test_tensor({2, Qdn, 4}, 41), mask};
  const DinoTransformerOutput a = model.forward(in.feats, in.masks, in.pos, dn);
  CHECK(a.logits.shape() == Shape{2, 2, Q, 3});
  CHECK(a.boxes.shape() == Shape{2, 2, Q, 4});
  CHECK(a.enc_logits.shape() == Shape{2, K, 3});
  CHECK(a.enc_boxes.shape() == Shape{2, K, 4});
  CHECK(a.init_reference.shape() == Shape{2, Q, 4});
  // the denoising boxes start where their logits say
  RV_EXPECT_CLOSE(a.init_reference.narrow(1, 0, Qdn), sigmoid(dn.ref_logits));

  // other denoising queries: the matching queries' outputs do not change, the denoising ones do
  DinoDenoisingQueries dn2{test::test_tensor({2, Qdn, 16}, 50), test::test_tensor({2, Qdn, 4}, 51), mask};
  const DinoTransformerOutput b = model.forward(in.feats, in.masks, in.pos, dn2);
  RV_EXPECT_CLOSE(b.logits.narrow(2, Qdn, K), a.logits.narrow(2, Qdn, K), .rtol = 0, .atol = 1e-6);
  RV_EXPECT_CLOSE(b.boxes.narrow(2, Qdn, K), a.boxes.narrow(2, Qdn, K), .rtol = 0, .atol = 1e-6);
  CHECK(!test::compare(b.logits.narrow(2, 0, Qdn), a.logits.narrow(2, 0, Qdn), {.rtol = 0, .atol = 1e-4}).empty());
  // without the mask the matching queries do see them
  DinoDenoisingQueries open{dn2.tgt, dn2.ref_logits, Tensor()};
  const DinoTransformerOutput c = model.forward(in.feats, in.masks, in.pos, open);
  CHECK(!test::compare(c.logits.narrow(2, Qdn, K), b.logits.narrow(2, Qdn, K), {.rtol = 0, .atol = 1e-4}).empty());
  // and with no denoising queries at all, the matching queries' outputs equal the masked run's
  const DinoTransformerOutput d = model.forward(in.feats, in.masks, in.pos);
  CHECK(d.logits.shape() == Shape{2, 2, K, 3});
  RV_EXPECT_CLOSE(d.logits, a.logits.narrow(2, Qdn, K), .rtol = 0, .atol = 1e-5);
  RV_EXPECT_CLOSE(d.boxes, a.boxes.narrow(2, Qdn, K), .rtol = 0, .atol = 1e-5);
}

TEST_CASE("DinoTransformerDecoder: look-forward-twice trains layer i's refinement from layer i + 1's box") {
  // Separate box heads, loss on the LAST layer's boxes only. With look-forward-twice that box adds
  // to layer 0's undetached refined box, so head 0 gets a gradient; without, it adds to the detached
  // one and head 0 gets none (head 0's own output is not in the loss).
  for (bool lft : {true, false}) {
    CAPTURE(lft);
    DinoTransformerOptions o = tiny();
    o.dec_pred_bbox_embed_share = false;
    o.look_forward_twice = lft;
    Generator gen(5);
    DinoTransformer model(o, gen);
    randomise(model, 200);
    const TinyInputs in = tiny_inputs(60);
    const DinoTransformerOutput out = model.forward(in.feats, in.masks, in.pos);
    sum(mul(out.boxes.select(0, 1), test::test_tensor({2, 6, 4}, 70))).backward();
    const Tensor g0 = model.decoder->bbox_head(0).layer(2).weight.grad();
    const bool some = g0.defined() && max(abs(g0)).to_double_vector()[0] > 0.0;
    CHECK(some == lft);
    CHECK(model.decoder->bbox_head(1).layer(2).weight.grad().defined());
  }
}

TEST_CASE("DinoTransformer refuses bad inputs by name") {
  Generator gen(6);
  DinoTransformer model(tiny(), gen);
  TinyInputs in = tiny_inputs(80);
  CHECK_THROWS_WITH_AS(model.forward({in.feats[0]}, {in.masks[0]}, {in.pos[0]}),
                       doctest::Contains("DinoTransformer: expected 2 levels"), std::invalid_argument);
  TinyInputs bad = in;
  bad.masks[1] = zeros({2, 3, 3});
  CHECK_THROWS_WITH_AS(model.forward(bad.feats, bad.masks, bad.pos),
                       doctest::Contains("DinoTransformer: expected mask 1 bool (2, 3, 3)"), std::invalid_argument);
  bad = in;
  bad.pos[0] = zeros({2, 16, 5, 5});
  CHECK_THROWS_WITH_AS(model.forward(bad.feats, bad.masks, bad.pos),
                       doctest::Contains("expected position embedding 0 of shape"), std::invalid_argument);
  DinoDenoisingQueries dn{zeros({2, 3, 16}), zeros({2, 2, 4}), Tensor()};
  CHECK_THROWS_WITH_AS(model.forward(in.feats, in.masks, in.pos, dn),
                       doctest::Contains("expected denoising tgt (2, Q_dn, 16) and ref_logits (2, Q_dn, 4)"),
                       std::invalid_argument);
  dn = {zeros({2, 3, 16}), zeros({2, 3, 4}), zeros({8, 8}).to(DType::boolean)};
  CHECK_THROWS_WITH_AS(model.forward(in.feats, in.masks, in.pos, dn),
                       doctest::Contains("MultiheadAttention: expected a bool attn_mask (9, 9)") , std::invalid_argument);
  DinoTransformerOptions o = tiny();
  o.num_queries = 40;  // more than the 39 tokens
  Generator g2(6);
  DinoTransformer big(o, g2);
  CHECK_THROWS_WITH_AS(big.forward(in.feats, in.masks, in.pos), doctest::Contains("select_queries: expected tgt_embed"),
                       std::invalid_argument);
}

TEST_CASE("DinoTransformer: non-contiguous inputs, a 1 x 1 level and zero denoising queries") {
  DinoTransformerOptions o = tiny();
  o.num_queries = 5;
  Generator gen(8);
  DinoTransformer model(o, gen);
  randomise(model, 300);
  // level 1 is a single pixel (padding-free in both images); level 0 is 4 x 3, image 1 valid 2 x 3
  std::vector<Tensor> feats = {test::test_tensor({2, 16, 4, 3}, 90), test::test_tensor({2, 16, 1, 1}, 91)};
  std::vector<Tensor> pos = {test::test_tensor({2, 16, 4, 3}, 92), test::test_tensor({2, 16, 1, 1}, 93)};
  const std::vector<Tensor> masks = {padding_mask(4, 3, {{4, 3}, {2, 3}}), padding_mask(1, 1, {{1, 1}, {1, 1}})};
  const DinoTransformerOutput a = model.forward(feats, masks, pos);
  // the same values laid out channels-last and viewed back: (B, H, W, C) -> permute -> (B, C, H, W)
  std::vector<Tensor> f2, p2;
  for (size_t l = 0; l < 2; ++l) {
    f2.push_back(feats[l].permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}));
    p2.push_back(pos[l].permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}));
    if (l == 0) CHECK(!f2.back().is_contiguous());  // (a 1 x 1 map counts as contiguous either way)
  }
  const DinoTransformerOutput b = model.forward(f2, masks, p2);
  RV_EXPECT_CLOSE(b.logits, a.logits, .rtol = 0, .atol = 1e-6);
  RV_EXPECT_CLOSE(b.boxes, a.boxes, .rtol = 0, .atol = 1e-6);
  CHECK(b.topk.to_vector<int64_t>() == a.topk.to_vector<int64_t>());
  // an empty denoising part (Q_dn = 0, its (K, K) mask all open) is the same as none
  DinoDenoisingQueries none{zeros({2, 0, 16}), zeros({2, 0, 4}), zeros({5, 5}).to(DType::boolean)};
  const DinoTransformerOutput c = model.forward(feats, masks, pos, none);
  RV_EXPECT_CLOSE(c.logits, a.logits, .rtol = 0, .atol = 1e-6);
  RV_EXPECT_CLOSE(c.enc_boxes, a.enc_boxes, .rtol = 0, .atol = 1e-6);
  // image 1's selected tokens: the top-k never picks beyond S = 13
  for (int64_t t : a.topk.to_vector<int64_t>()) CHECK((t >= 0 && t < 13));
}
