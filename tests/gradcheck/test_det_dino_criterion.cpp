// Gradients of DINO's denoising queries and criterion (models/det/cdn_queries.h, dn_post_process.h,
// dino_criterion.h) against f64 central finite differences: the label queries w.r.t. label_enc's
// weight, and the criterion's total w.r.t. the full decoder outputs (through dn_post_process) and
// the encoder proposals, with the matching fixed (it is piecewise constant: a finite-difference
// step must not change it, so it is computed once and passed in).
#include <vector>

#include "models/det/cdn_queries.h"
#include "models/det/dino_criterion.h"
#include "models/det/dn_post_process.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

using Inputs = std::vector<Tensor>;

DetTarget make_target(int64_t n, uint64_t seed, int64_t K) {
  const std::vector<double> c = test::test_tensor({n, 2}, seed, DType::f64, 0.25, 0.75).to_double_vector();
  const std::vector<double> s = test::test_tensor({n, 2}, seed + 1, DType::f64, 0.1, 0.4).to_double_vector();
  std::vector<double> v;
  std::vector<int64_t> labels;
  for (int64_t t = 0; t < n; ++t) {
    for (double x : {c[size_t(2 * t)], c[size_t(2 * t + 1)], s[size_t(2 * t)], s[size_t(2 * t + 1)]}) v.push_back(x);
    labels.push_back(t % K);
  }
  return {from_vector(labels, {n}), from_vector(v, {n, 4}, DType::f64)};
}

}  // namespace

TEST_CASE("gradcheck the denoising label queries in label_enc's weight") {
  const int64_t K = 3;
  const std::vector<DetTarget> targets{make_target(2, 1, K), make_target(1, 3, K)};
  CdnSettings s;
  s.num_classes = K;
  s.dn_number = 2;  // 4 groups (DINO's rule below 50): a small pad
  Generator gen(4);
  const CdnNoise noise = draw_cdn_noise(cdn_rows(targets, cdn_layout(targets, s)), K, gen);
  Tensor w = test::grad_input({K + 1, 3}, 5);
  RV_GRADCHECK([&](const Inputs& in) { return make_cdn_queries(targets, s, in[0], noise).label_queries; }, Inputs{w});
}

TEST_CASE("gradcheck DINO's criterion total in every prediction, matching fixed") {
  const int64_t K = 3, Q = 5, L = 2, B = 2;
  const std::vector<DetTarget> targets{make_target(2, 7, K), make_target(1, 9, K)};
  const DnMeta meta{2, 2, 8};
  // Full decoder outputs (L, B, pad + Q, .): logits anywhere, boxes valid cxcywh.
  Tensor logits = test::grad_input({L, B, meta.pad_size + Q, K}, 11, -3.0, 3.0);
  Tensor boxes = test::grad_input({L, B, meta.pad_size + Q, 4}, 12, 0.2, 0.6);
  Tensor ilogits = test::grad_input({B, Q, K}, 13, -3.0, 3.0);
  Tensor iboxes = test::grad_input({B, Q, 4}, 14, 0.2, 0.6);
  auto outputs = [&](const Inputs& in) {
    const DnSplit split = dn_post_process(in[0], in[1], meta);
    return DinoOutputs{split.matching, split.dn, {in[2], in[3]}, meta};
  };
  const DinoMatching match = dino_match(outputs(Inputs{logits, boxes, ilogits, iboxes}), targets);
  RV_GRADCHECK([&](const Inputs& in) { return dino_criterion(outputs(in), targets, match).total; },
               (Inputs{logits, boxes, ilogits, iboxes}));
}
