// DINO's contrastive denoising queries, their attention mask and the split of the decoder outputs
// (models/det/cdn_queries.h, cdn_attention_mask.h, dn_post_process.h) against plain reference
// loops written here: the group rule, every slot's label and box from the draws, the noise bands
// (positives within lambda, negatives between lambda and 2 lambda), padding, the mask by DINO's
// block loop, reproducibility from the generator, empty batches, and the error messages.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "models/det/cdn_attention_mask.h"
#include "models/det/cdn_queries.h"
#include "models/det/dn_post_process.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

// n targets with centres in [c_lo, c_hi) and sizes in [s_lo, s_hi); labels (t * 3 + seed) % K.
DetTarget make_target(int64_t n, uint64_t seed, int64_t K, double c_lo = 0.1, double c_hi = 0.9, double s_lo = 0.05,
                      double s_hi = 0.5, DType dtype = DType::f64) {
  const std::vector<double> c = test::test_tensor({n, 2}, seed, DType::f64, c_lo, c_hi).to_double_vector();
  const std::vector<double> s = test::test_tensor({n, 2}, seed + 1, DType::f64, s_lo, s_hi).to_double_vector();
  std::vector<double> v;
  std::vector<int64_t> labels;
  for (int64_t t = 0; t < n; ++t) {
    v.insert(v.end(), {c[size_t(2 * t)], c[size_t(2 * t + 1)], s[size_t(2 * t)], s[size_t(2 * t + 1)]});
    labels.push_back(int64_t((uint64_t(t) * 3 + seed) % uint64_t(K)));
  }
  return {from_vector(labels, {n}), from_vector(v, {n, 4}, dtype)};
}

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double ref_inverse_sigmoid(double x) {
  x = std::clamp(x, 0.0, 1.0);
  return std::log(std::max(x, 1e-3) / std::max(1.0 - x, 1e-3));
}

// DINO's mask loop, block by block, as written in prepare_for_cdn (with its first / last group
// branches), on a plain bool grid.
std::vector<char> dino_mask_loop(int64_t single_pad, int64_t groups, int64_t pad, int64_t Q) {
  const int64_t T = pad + Q;
  std::vector<char> m(size_t(T * T), 0);
  auto block = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) m[size_t(r * T + c)] = 1;
  };
  block(pad, T, 0, pad);
  for (int64_t i = 0; i < groups; ++i) {
    const int64_t lo = single_pad * 2 * i, hi = single_pad * 2 * (i + 1);
    if (i == 0) block(lo, hi, hi, pad);
    if (i == groups - 1) {
      block(lo, hi, 0, single_pad * i * 2);
    } else {
      block(lo, hi, hi, pad);
      block(lo, hi, 0, lo);
    }
  }
  return m;
}

}  // namespace

TEST_CASE("cdn_layout: DINO's group rule, one group without targets, at least one group") {
  CdnSettings s;
  s.num_classes = 5;
  auto layout = [&](std::vector<int64_t> counts, int64_t dn_number) {
    std::vector<DetTarget> t;
    for (size_t b = 0; b < counts.size(); ++b) t.push_back(make_target(counts[b], 10 + b, 5));
    s.dn_number = dn_number;
    return cdn_layout(t, s);
  };
  DnMeta m = layout({3, 1}, 100);  // 200 / 6 = 33 groups of 6
  CHECK(m.max_gt == 3);
  CHECK(m.num_groups == 33);
  CHECK(m.pad_size == 198);
  CHECK(m.group_size() == 6);
  m = layout({1}, 100);  // 100 groups of a positive and a negative
  CHECK(m.num_groups == 100);
  CHECK(m.pad_size == 200);
  m = layout({7, 0, 2}, 50);  // 2 dn_number = 100: still the division
  CHECK(m.num_groups == 100 / 14);
  m = layout({7, 2}, 5);  // 2 dn_number < 100: DINO keeps 10 groups whatever max_gt is
  CHECK(m.num_groups == 10);
  CHECK(m.pad_size == 140);
  m = layout({80}, 50);  // more targets than dn queries: one group
  CHECK(m.num_groups == 1);
  CHECK(m.pad_size == 160);
  for (const DnMeta& none : {layout({0, 0}, 100), layout({}, 100), layout({2, 1}, 0)}) {
    CHECK(none.pad_size == 0);
    CHECK(none.num_groups == 1);
    CHECK_FALSE(none.has_dn());
  }
}

TEST_CASE("make_cdn_queries: every slot's label and box from the draws, by a reference loop") {
  const int64_t K = 4, hidden = 3;
  // Image 1 has no targets, image 0 a non-contiguous boxes tensor (a transposed buffer).
  DetTarget t0 = make_target(3, 20, K), t2 = make_target(2, 22, K);
  t0.boxes = t0.boxes.t().contiguous().t();
  REQUIRE_FALSE(t0.boxes.is_contiguous());
  const std::vector<DetTarget> targets{t0, make_target(0, 21, K), t2};
  CdnSettings s;
  s.num_classes = K;
  s.dn_number = 6;  // 12 groups (DINO's rule below 50)
  s.label_noise_ratio = 0.8;
  s.box_noise_scale = 0.7;
  const DnMeta m = cdn_layout(targets, s);
  REQUIRE(m.num_groups == 12);
  REQUIRE(m.pad_size == 72);
  Generator gen(77);
  const CdnNoise noise = draw_cdn_noise(cdn_rows(targets, m), K, gen);
  REQUIRE(noise.flip.size() == size_t(2 * 12 * 5));
  const Tensor weight = test::test_tensor({K + 1, hidden}, 23, DType::f64);
  const CdnQueries q = make_cdn_queries(targets, s, weight, noise);
  REQUIRE(q.label_queries.shape() == Shape{3, 72, hidden});
  REQUIRE(q.box_queries.shape() == Shape{3, 72, 4});
  REQUIRE(q.noised_labels.shape() == Shape{3, 72});

  const std::vector<double> lq = q.label_queries.to_double_vector(), bq = q.box_queries.to_double_vector(),
                            w = weight.to_double_vector();
  const std::vector<int64_t> nl = q.noised_labels.to_vector<int64_t>();
  // Row index of (copy k, image b, target t): k * N + (targets of the images before b) + t.
  const int64_t counts[3] = {3, 0, 2}, before[3] = {0, 3, 3}, N = 5;
  int flipped = 0;
  for (int64_t b = 0; b < 3; ++b) {
    const std::vector<double> gt = counts[b] ? targets[size_t(b)].boxes.to_double_vector() : std::vector<double>{};
    const std::vector<double> gl = counts[b] ? targets[size_t(b)].labels.to_double_vector() : std::vector<double>{};
    for (int64_t slot = 0; slot < 72; ++slot) {
      const int64_t k = slot / m.max_gt, t = slot % m.max_gt;
      const size_t o = size_t(b * 72 + slot);
      if (t >= counts[b]) {  // padding
        CHECK(nl[o] == -1);
        for (int64_t i = 0; i < 4; ++i) CHECK(bq[o * 4 + size_t(i)] == 0.0);
        for (int64_t i = 0; i < hidden; ++i) CHECK(lq[o * size_t(hidden) + size_t(i)] == 0.0);
        continue;
      }
      const size_t r = size_t(k * N + before[b] + t);
      const bool flip = noise.flip[r] < 0.4;
      flipped += flip;
      const int64_t label = flip ? noise.new_label[r] : int64_t(gl[size_t(t)]);
      CHECK(nl[o] == label);
      for (int64_t i = 0; i < hidden; ++i) CHECK(lq[o * size_t(hidden) + size_t(i)] == w[size_t(label * hidden + i)]);
      const double* g = &gt[size_t(t * 4)];
      double c[4] = {g[0] - g[2] / 2, g[1] - g[3] / 2, g[0] + g[2] / 2, g[1] + g[3] / 2};
      const double d[4] = {g[2] / 2, g[3] / 2, g[2] / 2, g[3] / 2};
      for (int i = 0; i < 4; ++i) {
        const double mag = noise.part[r * 4 + size_t(i)] + (k % 2 == 1 ? 1.0 : 0.0);
        c[i] = std::clamp(c[i] + noise.sign[r * 4 + size_t(i)] * mag * d[i] * 0.7, 0.0, 1.0);
      }
      const double want[4] = {(c[0] + c[2]) / 2, (c[1] + c[3]) / 2, c[2] - c[0], c[3] - c[1]};
      for (int i = 0; i < 4; ++i) CHECK(std::abs(bq[o * 4 + size_t(i)] - ref_inverse_sigmoid(want[i])) <= 1e-12);
    }
  }
  CHECK(flipped > 0);  // the draws did replace some labels (probability 0.4 over 120 rows)
}

TEST_CASE("make_cdn_queries: positives move within lambda, negatives between lambda and 2 lambda") {
  const int64_t K = 3;
  // Small boxes near the centre: no corner reaches 0 or 1, so nothing is clamped.
  const std::vector<DetTarget> targets{make_target(4, 30, K, 0.35, 0.65, 0.02, 0.15),
                                       make_target(2, 32, K, 0.35, 0.65, 0.02, 0.15)};
  CdnSettings s;
  s.num_classes = K;
  Generator gen(5);
  const Tensor weight = zeros({K + 1, 2}, DType::f64);
  const CdnQueries q = make_cdn_queries(targets, s, weight, gen);
  REQUIRE(q.meta.num_groups == 25);
  const std::vector<double> bq = q.box_queries.to_double_vector();
  int inner = 0, outer = 0, crossed = 0;
  for (int64_t b = 0; b < 2; ++b) {
    const std::vector<double> gt = targets[size_t(b)].boxes.to_double_vector();
    for (int64_t slot = 0; slot < q.meta.pad_size; ++slot) {
      const int64_t k = slot / q.meta.max_gt, t = slot % q.meta.max_gt;
      if (t >= targets[size_t(b)].labels.size(0)) continue;
      const double* g = &gt[size_t(t * 4)];
      const double* p = &bq[size_t((b * q.meta.pad_size + slot) * 4)];
      const double cx = sigm(p[0]), cy = sigm(p[1]), w = sigm(p[2]), h = sigm(p[3]);
      // A negative's corners can cross (x1 moved right past x2 moved left): the width goes <= 0,
      // which DINO's inverse sigmoid clamps to 1e-3; such boxes say nothing about the bands.
      if (w < 1.001e-3 || h < 1.001e-3) {
        CHECK(k % 2 == 1);
        ++crossed;
        continue;
      }
      const double got[4] = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
      const double gtc[4] = {g[0] - g[2] / 2, g[1] - g[3] / 2, g[0] + g[2] / 2, g[1] + g[3] / 2};
      const double lambda[4] = {g[2] / 2, g[3] / 2, g[2] / 2, g[3] / 2};
      for (int i = 0; i < 4; ++i) {
        const double moved = std::abs(got[i] - gtc[i]) / lambda[i];
        if (k % 2 == 0) {
          CHECK(moved < 1.0 + 1e-9);
          ++inner;
        } else {
          CHECK(moved > 1.0 - 1e-9);
          CHECK(moved < 2.0 + 1e-9);
          ++outer;
        }
      }
    }
  }
  CHECK(inner == 25 * 6 * 4);        // every positive
  CHECK(outer + 4 * crossed == 25 * 6 * 4);
  CHECK(outer > 25 * 6);  // crossing needs x1 moved right and x2 left (or y): 7 / 16 of the negatives
}

TEST_CASE("make_cdn_queries: reproducible from the generator, f32 like f64, gradient to the used rows only") {
  const int64_t K = 6;
  const std::vector<DetTarget> targets{make_target(2, 40, K), make_target(5, 41, K)};
  CdnSettings s;
  s.num_classes = K;
  const Tensor w64 = test::test_tensor({K + 1, 4}, 42, DType::f64);
  Generator g1(9), g2(9), g3(10);
  const CdnQueries a = make_cdn_queries(targets, s, w64, g1), b = make_cdn_queries(targets, s, w64, g2),
                   c = make_cdn_queries(targets, s, w64, g3);
  RV_EXPECT_CLOSE(a.box_queries, b.box_queries, 0.0, 0.0);
  RV_EXPECT_CLOSE(a.label_queries, b.label_queries, 0.0, 0.0);
  CHECK(a.noised_labels.to_vector<int64_t>() == b.noised_labels.to_vector<int64_t>());
  CHECK(sum(abs(sub(a.box_queries, c.box_queries))).item() > 0.0);  // another seed, other noise
  CHECK(g1.offset() > 0);
  // A second call on the same generator draws new noise.
  const CdnQueries a2 = make_cdn_queries(targets, s, w64, g1);
  CHECK(sum(abs(sub(a.box_queries, a2.box_queries))).item() > 0.0);

  // The f32 path computes the same boxes in f32 arithmetic.
  Generator g4(9);
  const CdnQueries f = make_cdn_queries(targets, s, w64.to(DType::f32), g4);
  CHECK(f.box_queries.dtype() == DType::f32);
  CHECK(f.label_queries.dtype() == DType::f32);
  RV_EXPECT_CLOSE(f.box_queries, a.box_queries.to(DType::f32), 1e-4, 1e-5);

  // Gradient: row k of label_enc gets the sum of gout over the real slots holding label k.
  Tensor w = w64.clone().requires_grad_(true);
  Generator g5(9);
  const CdnQueries q = make_cdn_queries(targets, s, w, g5);
  const Tensor gout = test::test_tensor(q.label_queries.shape(), 43, DType::f64);
  sum(mul(q.label_queries, gout)).backward();
  const std::vector<double> gv = gout.to_double_vector(), grad = w.grad().to_double_vector();
  const std::vector<int64_t> nl = q.noised_labels.to_vector<int64_t>();
  std::vector<double> want(size_t((K + 1) * 4), 0.0);
  for (size_t o = 0; o < nl.size(); ++o)
    if (nl[o] >= 0)
      for (size_t i = 0; i < 4; ++i) want[size_t(nl[o]) * 4 + i] += gv[o * 4 + i];
  for (size_t i = 0; i < want.size(); ++i) CHECK(grad[i] == doctest::Approx(want[i]).epsilon(1e-12));
  for (size_t i = 0; i < 4; ++i) CHECK(grad[size_t(K) * 4 + i] == 0.0);  // row num_classes is never picked
}

TEST_CASE("make_cdn_queries: no targets anywhere gives no denoising queries; noise off keeps the gt") {
  const int64_t K = 3;
  CdnSettings s;
  s.num_classes = K;
  Generator gen(1);
  const Tensor w = test::test_tensor({K + 1, 5}, 50, DType::f32);
  const CdnQueries none = make_cdn_queries({make_target(0, 51, K), make_target(0, 52, K)}, s, w, gen);
  CHECK(none.meta.pad_size == 0);
  CHECK(none.label_queries.shape() == Shape{2, 0, 5});
  CHECK(none.box_queries.shape() == Shape{2, 0, 4});
  CHECK(gen.offset() == 0);  // nothing drawn
  const Tensor mask = cdn_attention_mask(none.meta, 4);
  CHECK(mask.shape() == Shape{4, 4});
  CHECK(sum(mask.to(DType::f32)).item() == 0.0);
  CHECK(make_cdn_queries({}, s, w, gen).label_queries.shape() == Shape{0, 0, 5});

  s.label_noise_ratio = 0.0;
  s.box_noise_scale = 0.0;
  const DetTarget t = make_target(2, 53, K);
  const CdnQueries q = make_cdn_queries({t}, s, w.to(DType::f64), gen);
  const std::vector<double> bq = q.box_queries.to_double_vector(), gt = t.boxes.to_double_vector();
  const std::vector<int64_t> nl = q.noised_labels.to_vector<int64_t>();
  const std::vector<int64_t> gl = t.labels.to_vector<int64_t>();
  for (int64_t slot = 0; slot < q.meta.pad_size; ++slot) {
    CHECK(nl[size_t(slot)] == gl[size_t(slot % 2)]);
    for (int64_t i = 0; i < 4; ++i)
      CHECK(bq[size_t(slot * 4 + i)] == doctest::Approx(ref_inverse_sigmoid(gt[size_t((slot % 2) * 4 + i)])).epsilon(1e-13));
  }
}

TEST_CASE("make_cdn_queries and draw_cdn_noise: errors name the argument") {
  const int64_t K = 3;
  CdnSettings s;
  s.num_classes = K;
  Generator gen(2);
  const DetTarget t = make_target(2, 60, K);
  CHECK_THROWS_WITH_AS(make_cdn_queries({t}, s, zeros({K, 4}), gen),
                       "make_cdn_queries: expected label_enc_weight of shape (num_classes + 1 = 4, hidden), float32 or "
                       "float64, got float32 [3, 4]",
                       std::invalid_argument);
  DetTarget bad = make_target(1, 61, 10);
  bad.labels = from_vector(std::vector<int64_t>{3}, {1});
  CHECK_THROWS_WITH_AS(make_cdn_queries({t, bad}, s, zeros({K + 1, 4}), gen),
                       "make_cdn_queries: targets[1]: label 3 is outside [0, 3)", std::out_of_range);
  bad = t;
  bad.boxes = zeros({2, 3});
  CHECK_THROWS_WITH_AS(make_cdn_queries({bad}, s, zeros({K + 1, 4}), gen),
                       "make_cdn_queries: targets[0]: expected float boxes of shape (2, 4), got float32 [2, 3]",
                       std::invalid_argument);
  CdnNoise short_noise = draw_cdn_noise(3, K, gen);
  CHECK_THROWS_WITH_AS(make_cdn_queries({t}, s, zeros({K + 1, 4}), short_noise),
                       "make_cdn_queries: expected noise for 200 rows (flip and new_label: 200, sign and part: 800), got "
                       "3, 3, 12, 12",
                       std::invalid_argument);
  CdnSettings neg = s;
  neg.dn_number = -1;
  CHECK_THROWS_WITH_AS(cdn_layout({t}, neg), "cdn_layout: expected dn_number >= 0, got -1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(draw_cdn_noise(4, 0, gen), "draw_cdn_noise: expected rows >= 0 and num_classes > 0, got 4 and 0",
                       std::invalid_argument);
}

TEST_CASE("cdn_attention_mask equals DINO's block loop; the rule in words") {
  for (auto [max_gt, groups, Q] : {std::tuple<int64_t, int64_t, int64_t>{3, 4, 5}, {1, 1, 3}, {2, 1, 0}, {1, 7, 2}, {4, 2, 1}}) {
    CAPTURE(max_gt);
    CAPTURE(groups);
    CAPTURE(Q);
    const DnMeta m{max_gt, groups, 2 * max_gt * groups};
    const Tensor mask = cdn_attention_mask(m, Q);
    const int64_t T = m.pad_size + Q;
    REQUIRE(mask.shape() == Shape{T, T});
    const std::vector<double> got = mask.to_double_vector();
    const std::vector<char> want = dino_mask_loop(max_gt, groups, m.pad_size, Q);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        CHECK(got[size_t(i * T + j)] == double(want[size_t(i * T + j)]));
        // In words: blocked iff a matching query looks at a dn query, or two dn groups differ.
        const bool dn_i = i < m.pad_size, dn_j = j < m.pad_size;
        const bool blocked = (!dn_i && dn_j) || (dn_i && dn_j && i / (2 * max_gt) != j / (2 * max_gt));
        CHECK(got[size_t(i * T + j)] == double(blocked));
      }
  }
  CHECK_THROWS_WITH_AS(cdn_attention_mask(DnMeta{2, 3, 10}, 4),
                       "cdn_attention_mask: expected num_queries >= 0 and a DnMeta with pad_size = 2 * max_gt * "
                       "num_groups, got num_queries 4, max_gt 2, num_groups 3, pad_size 10",
                       std::invalid_argument);
}

TEST_CASE("dn_post_process: the first pad_size queries are the dn part, views with gradients") {
  const DnMeta m{2, 3, 12};
  Tensor logits = test::test_tensor({3, 2, 17, 4}, 70, DType::f64).requires_grad_(true);  // (L, B, pad + Q, K)
  Tensor boxes = test::test_tensor({3, 2, 17, 4}, 71, DType::f64, 0.1, 0.9).requires_grad_(true);
  const DnSplit s = dn_post_process(logits, boxes, m);
  REQUIRE(s.dn.size() == 3);
  REQUIRE(s.matching.size() == 3);
  const std::vector<double> lv = logits.to_double_vector();
  for (int64_t l = 0; l < 3; ++l) {
    REQUIRE(s.dn[size_t(l)].logits.shape() == Shape{2, 12, 4});
    REQUIRE(s.matching[size_t(l)].boxes.shape() == Shape{2, 5, 4});
    const std::vector<double> dv = s.dn[size_t(l)].logits.to_double_vector(),
                              mv = s.matching[size_t(l)].logits.to_double_vector();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t q = 0; q < 17; ++q)
        for (int64_t k = 0; k < 4; ++k) {
          const double v = lv[size_t(((l * 2 + b) * 17 + q) * 4 + k)];
          CHECK(v == (q < 12 ? dv[size_t((b * 12 + q) * 4 + k)] : mv[size_t((b * 5 + q - 12) * 4 + k)]));
        }
  }
  // Gradients land in the right slots of the full outputs.
  add(mul(sum(s.dn[2].logits), 2.0), sum(s.matching[0].boxes)).backward();
  const std::vector<double> gl = logits.grad().to_double_vector(), gb = boxes.grad().to_double_vector();
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t q = 0; q < 17; ++q)
        for (int64_t k = 0; k < 4; ++k) {
          const size_t i = size_t(((l * 2 + b) * 17 + q) * 4 + k);
          CHECK(gl[i] == (l == 2 && q < 12 ? 2.0 : 0.0));
          CHECK(gb[i] == (l == 0 && q >= 12 ? 1.0 : 0.0));
        }
  // Without denoising queries the outputs pass through whole.
  const DnSplit none = dn_post_process({{logits.select(0, 0), boxes.select(0, 0)}}, DnMeta{});
  CHECK(none.dn.empty());
  CHECK(none.matching[0].logits.shape() == Shape{2, 17, 4});
  CHECK_THROWS_WITH_AS(dn_post_process(logits, boxes, DnMeta{9, 1, 18}),
                       "dn_post_process: layer 0: expected at least pad_size = 18 queries, got 17", std::invalid_argument);
  CHECK_THROWS_WITH_AS(dn_post_process({{logits.select(0, 0), boxes.select(0, 0).narrow(1, 0, 3)}}, m),
                       "dn_post_process: layer 0: expected logits (B, Qt, K) and boxes (B, Qt, 4), got [2, 17, 4] and [2, 3, 4]",
                       std::invalid_argument);
}
