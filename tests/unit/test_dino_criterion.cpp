// DINO's criterion (models/det/dino_criterion.h) against a plain reference loop written here:
// every named loss and the weighted total on 2 decoder layers, the encoder proposals and the
// denoising queries; the denoising pairs by construction (negatives and padding get no box
// gradient); num_boxes through the distributed hook and its clamp; the zero dn losses without
// denoising queries; f32 inputs; and the error messages.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "models/det/dino_criterion.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models::det;

namespace {

DetTarget make_target(int64_t n, uint64_t seed, int64_t K) {
  const std::vector<double> c = test::test_tensor({n, 2}, seed, DType::f64, 0.2, 0.8).to_double_vector();
  const std::vector<double> s = test::test_tensor({n, 2}, seed + 1, DType::f64, 0.05, 0.4).to_double_vector();
  std::vector<double> v;
  std::vector<int64_t> labels;
  for (int64_t t = 0; t < n; ++t) {
    for (double x : {c[size_t(2 * t)], c[size_t(2 * t + 1)], s[size_t(2 * t)], s[size_t(2 * t + 1)]}) v.push_back(x);
    labels.push_back(int64_t((uint64_t(t) * 2 + seed) % uint64_t(K)));
  }
  return {from_vector(labels, {n}), from_vector(v, {n, 4}, DType::f64)};
}

DetPrediction make_prediction(int64_t B, int64_t Q, int64_t K, uint64_t seed, DType dtype = DType::f64) {
  return {test::test_tensor({B, Q, K}, seed, dtype, -4.0, 3.0).requires_grad_(true),
          test::test_tensor({B, Q, 4}, seed + 1, dtype, 0.15, 0.6).requires_grad_(true)};
}

double ref_focal(double x, double t) {  // alpha 0.25, gamma 2
  const double p = 1.0 / (1.0 + std::exp(-x));
  const double ce = std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x)));
  const double p_t = p * t + (1 - p) * (1 - t);
  return (0.25 * t + 0.75 * (1 - t)) * (1 - p_t) * (1 - p_t) * ce;
}

double ref_giou(const double* a, const double* b) {
  const double ax1 = a[0] - a[2] / 2, ay1 = a[1] - a[3] / 2, ax2 = a[0] + a[2] / 2, ay2 = a[1] + a[3] / 2;
  const double bx1 = b[0] - b[2] / 2, by1 = b[1] - b[3] / 2, bx2 = b[0] + b[2] / 2, by2 = b[1] + b[3] / 2;
  const double iw = std::max(0.0, std::min(ax2, bx2) - std::max(ax1, bx1));
  const double ih = std::max(0.0, std::min(ay2, by2) - std::max(ay1, by1));
  const double uni = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - iw * ih;
  const double c = (std::max(ax2, bx2) - std::min(ax1, bx1)) * (std::max(ay2, by2) - std::min(ay1, by1));
  return iw * ih / uni - (c - uni) / c;
}

// One output's (class, bbox, giou) by plain loops over the pairs.
std::array<double, 3> ref_set(const DetPrediction& p, const std::vector<DetTarget>& targets,
                              const std::vector<MatchIndices>& idx, double num_boxes) {
  const int64_t B = p.logits.size(0), Q = p.logits.size(1), K = p.logits.size(2);
  const std::vector<double> lg = p.logits.to_double_vector(), bx = p.boxes.to_double_vector();
  std::vector<double> onehot(lg.size(), 0.0);
  double l1 = 0, giou = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<double> tb = targets[size_t(b)].boxes.to_double_vector();
    const std::vector<double> tl = targets[size_t(b)].labels.to_double_vector();
    for (size_t k = 0; k < idx[size_t(b)].query.size(); ++k) {
      const int64_t q = idx[size_t(b)].query[k], t = idx[size_t(b)].target[k];
      onehot[size_t((b * Q + q) * K + int64_t(tl[size_t(t)]))] = 1.0;
      const double* pb = &bx[size_t((b * Q + q) * 4)];
      for (int i = 0; i < 4; ++i) l1 += std::abs(pb[i] - tb[size_t(t * 4 + i)]);
      giou += 1 - ref_giou(pb, &tb[size_t(t * 4)]);
    }
  }
  double cls = 0;
  for (size_t i = 0; i < lg.size(); ++i) cls += ref_focal(lg[i], onehot[i]);
  return {cls / num_boxes, l1 / num_boxes, giou / num_boxes};
}

}  // namespace

TEST_CASE("dino_criterion: every named loss and the weighted total against a reference loop") {
  const int64_t B = 3, Q = 7, K = 4, L = 3;
  const std::vector<DetTarget> targets{make_target(3, 1, K), make_target(0, 3, K), make_target(2, 5, K)};
  const DnMeta meta{3, 2, 12};
  DinoOutputs out;
  for (int64_t l = 0; l < L; ++l) {
    out.layers.push_back(make_prediction(B, Q, K, uint64_t(10 + 4 * l)));
    out.dn_layers.push_back(make_prediction(B, meta.pad_size, K, uint64_t(30 + 4 * l)));
  }
  out.interm = make_prediction(B, 9, K, 50);
  out.dn_meta = meta;
  DinoCriterionOptions opt;
  opt.class_weight = 1.5;  // weights other than DINO's, so a mixed-up weight shows
  opt.bbox_weight = 4.0;
  opt.giou_weight = 2.5;
  const DinoMatching match = dino_match(out, targets, opt.matcher);
  REQUIRE(match.layers.size() == size_t(L));
  REQUIRE(match.interm.size() == size_t(B));
  const DinoLoss loss = dino_criterion(out, targets, opt);

  const double num_boxes = 5.0;
  const std::vector<MatchIndices> dn = dn_match_indices(targets, meta);
  std::map<std::string, std::array<double, 3>> want;
  want[""] = ref_set(out.layers[L - 1], targets, match.layers[L - 1], num_boxes);
  want["_dn"] = ref_set(out.dn_layers[L - 1], targets, dn, num_boxes * 2);
  for (int64_t l = 0; l + 1 < L; ++l) {
    const std::string i = std::to_string(l);  // (appended: GCC 12 warns falsely on "_" + string)
    std::string aux = "_", dn_aux = "_dn_";
    aux += i;
    dn_aux += i;
    want[aux] = ref_set(out.layers[size_t(l)], targets, match.layers[size_t(l)], num_boxes);
    want[dn_aux] = ref_set(out.dn_layers[size_t(l)], targets, dn, num_boxes * 2);
  }
  want["_interm"] = ref_set(out.interm, targets, match.interm, num_boxes);
  CHECK(loss.losses.size() == 3 * want.size());
  double total = 0;
  for (const auto& [suffix, v] : want) {
    CAPTURE(suffix);
    CHECK(loss.losses.at("loss_class" + suffix).item() == doctest::Approx(v[0]).epsilon(1e-12));
    CHECK(loss.losses.at("loss_bbox" + suffix).item() == doctest::Approx(v[1]).epsilon(1e-12));
    CHECK(loss.losses.at("loss_giou" + suffix).item() == doctest::Approx(v[2]).epsilon(1e-12));
    total += 1.5 * v[0] + 4.0 * v[1] + 2.5 * v[2];
  }
  CHECK(loss.total.item() == doctest::Approx(total).epsilon(1e-12));
  // The given-matching overload with the same matching gives the same numbers.
  CHECK(dino_criterion(out, targets, match, opt).total.item() == loss.total.item());
}

TEST_CASE("dn pairs by construction: positives get box losses, negatives and padding only the class loss") {
  const int64_t K = 3;
  const std::vector<DetTarget> targets{make_target(2, 7, K), make_target(1, 9, K)};
  const DnMeta meta{2, 3, 12};
  const std::vector<MatchIndices> dn = dn_match_indices(targets, meta);
  CHECK(dn[0].query == std::vector<int64_t>{0, 1, 4, 5, 8, 9});
  CHECK(dn[0].target == std::vector<int64_t>{0, 1, 0, 1, 0, 1});
  CHECK(dn[1].query == std::vector<int64_t>{0, 4, 8});
  CHECK(dn[1].target == std::vector<int64_t>{0, 0, 0});
  CHECK(dn_match_indices(targets, DnMeta{})[0].query.empty());

  DinoOutputs out;
  out.layers.push_back(make_prediction(2, 5, K, 60));
  out.dn_layers.push_back(make_prediction(2, 12, K, 62));
  out.dn_meta = meta;
  dino_criterion(out, targets).total.backward();
  const std::vector<double> gb = out.dn_layers[0].boxes.grad().to_double_vector();
  const std::vector<double> gl = out.dn_layers[0].logits.grad().to_double_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t q = 0; q < 12; ++q) {
      const int64_t slot = q % 4;  // [0, 2) positives, [2, 4) negatives
      const bool positive = slot < targets[size_t(b)].labels.size(0);
      double box_grad = 0, class_grad = 0;
      for (int i = 0; i < 4; ++i) box_grad += std::abs(gb[size_t((b * 12 + q) * 4 + i)]);
      for (int k = 0; k < K; ++k) class_grad += std::abs(gl[size_t((b * 12 + q) * K + k)]);
      CAPTURE(b);
      CAPTURE(q);
      CHECK((box_grad > 0) == positive);
      CHECK(class_grad > 0);  // every dn query is scored: its gt label, or "no object"
    }
}

TEST_CASE("num_boxes: the distributed hook, the clamp at 1, zero dn losses without denoising queries") {
  const int64_t K = 3;
  const std::vector<DetTarget> targets{make_target(2, 11, K), make_target(1, 13, K)};
  CHECK(dino_num_boxes(targets) == 3.0);
  DinoCriterionOptions opt;
  double seen = -1;
  opt.mean_over_ranks = [&](double n) {
    seen = n;
    return 2.5;  // as if the other processes had fewer boxes
  };
  CHECK(dino_num_boxes(targets, opt) == 2.5);
  CHECK(seen == 3.0);
  opt.mean_over_ranks = [](double) { return 0.25; };
  CHECK(dino_num_boxes(targets, opt) == 1.0);
  CHECK(dino_num_boxes({make_target(0, 15, K)}) == 1.0);

  DinoOutputs out;
  out.layers = {make_prediction(2, 6, K, 70), make_prediction(2, 6, K, 72)};
  const DinoLoss plain = dino_criterion(out, targets);
  opt.mean_over_ranks = [](double) { return 2.5; };
  const DinoLoss hooked = dino_criterion(out, targets, opt);
  for (const auto& [k, v] : plain.losses) {
    CAPTURE(k);
    CHECK(hooked.losses.at(k).item() == doctest::Approx(v.item() * 3.0 / 2.5).epsilon(1e-12));
  }
  // No dn: the dn losses are present and zero (DINO logs zeros); no interm losses without interm.
  for (const char* k : {"loss_class_dn", "loss_bbox_dn", "loss_giou_dn", "loss_class_dn_0", "loss_giou_dn_0"}) {
    CAPTURE(k);
    REQUIRE(plain.losses.count(k));
    CHECK(plain.losses.at(k).item() == 0.0);
  }
  CHECK(plain.losses.count("loss_class_interm") == 0);
  CHECK(plain.losses.size() == 12);
  double total = 0;
  for (const auto& [k, v] : plain.losses)
    total += v.item() * (k.rfind("loss_class", 0) == 0 ? 1.0 : k.rfind("loss_bbox", 0) == 0 ? 5.0 : 2.0);
  CHECK(plain.total.item() == doctest::Approx(total).epsilon(1e-12));  // DINO's weights by default
}

TEST_CASE("dino_criterion: f32 predictions give f32 losses close to the f64 ones") {
  const int64_t K = 4;
  const std::vector<DetTarget> targets{make_target(3, 17, K), make_target(2, 19, K)};
  DinoOutputs o64, o32;
  o64.layers = {make_prediction(2, 8, K, 80)};
  o64.dn_layers = {make_prediction(2, 6, K, 82)};
  o64.interm = make_prediction(2, 8, K, 84);
  o64.dn_meta = DnMeta{3, 1, 6};
  o32 = o64;
  o32.layers = {make_prediction(2, 8, K, 80, DType::f32)};
  o32.dn_layers = {make_prediction(2, 6, K, 82, DType::f32)};
  o32.interm = make_prediction(2, 8, K, 84, DType::f32);
  const DinoLoss a = dino_criterion(o64, targets), b = dino_criterion(o32, targets);
  CHECK(b.total.dtype() == DType::f32);
  for (const auto& [k, v] : a.losses) {
    CAPTURE(k);
    CHECK(b.losses.at(k).item() == doctest::Approx(v.item()).epsilon(1e-5));
  }
}

TEST_CASE("dino_criterion: errors name the argument") {
  const int64_t K = 3;
  const std::vector<DetTarget> targets{make_target(2, 21, K), make_target(1, 23, K)};
  DinoOutputs out;
  CHECK_THROWS_WITH_AS(dino_criterion(out, targets),
                       "dino_criterion: expected at least one decoder layer in outputs.layers", std::invalid_argument);
  out.layers = {make_prediction(2, 5, K, 90)};
  out.dn_meta = DnMeta{2, 2, 8};
  CHECK_THROWS_WITH_AS(dino_criterion(out, targets),
                       "dino_criterion: expected dn_layers for each decoder layer (dn_meta.pad_size = 8), got 0",
                       std::invalid_argument);
  out.dn_layers = {make_prediction(2, 6, K, 92)};
  CHECK_THROWS_WITH_AS(dino_criterion(out, targets),
                       "dino_criterion: dn_layers[0]: expected pad_size = 8 denoising queries, got 6", std::invalid_argument);
  out.dn_layers = {make_prediction(2, 8, K, 92)};
  CHECK_THROWS_WITH_AS(dino_criterion(out, {targets[0]}),
                       "dino_criterion: layers[0]: expected logits (B, Q, K) and boxes (B, Q, 4) with B = 1 (one per "
                       "target), got [2, 5, 3] and [2, 5, 4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(dino_criterion(out, {make_target(3, 25, K), targets[1]}),
                       "dino_criterion: targets[0] has 3 targets, more than dn_meta.max_gt = 2 (a dn_meta of another "
                       "batch?)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(dino_criterion(out, targets, DinoMatching{}),
                       "dino_criterion: expected a matching per decoder layer (1), got 0", std::invalid_argument);
  out.dn_meta = DnMeta{};
  CHECK_THROWS_WITH_AS(dino_criterion(out, targets),
                       "dino_criterion: expected dn_layers to be empty (dn_meta.pad_size = 0), got 1", std::invalid_argument);
}
