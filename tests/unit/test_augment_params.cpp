// augment_params (data/augment_params.h): RandomResizedCrop and RandomErasing boxes, checked
// against timm's rules written out plainly here (driven by std::mt19937_64 in place of Python's
// `random`) by comparing distributions over many draws, plus exact cases (the fallback) and
// determinism; and the scalar draws of random_draws.h.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>

#include "data/augment_params.h"
#include "data/random_draws.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

// timm RandomResizedCrop.get_params, transcribed, on its own random source.
CropBox timm_rrc(int64_t H, int64_t W, std::mt19937_64& rng, double s0, double s1, double r0, double r1) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double area = double(H * W);
  for (int a = 0; a < 10; ++a) {
    double target = area * (s0 + (s1 - s0) * u(rng));
    double ar = std::exp(std::log(r0) + (std::log(r1) - std::log(r0)) * u(rng));
    int64_t w = int64_t(std::nearbyint(std::sqrt(target * ar)));
    int64_t h = int64_t(std::nearbyint(std::sqrt(target / ar)));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      int64_t i = std::uniform_int_distribution<int64_t>(0, H - h)(rng);
      int64_t j = std::uniform_int_distribution<int64_t>(0, W - w)(rng);
      return {i, j, h, w};
    }
  }
  double in_ratio = double(W) / double(H);
  int64_t w = W, h = H;
  if (in_ratio < r0) h = int64_t(std::nearbyint(w / r0));
  else if (in_ratio > r1) w = int64_t(std::nearbyint(h * r1));
  return {(H - h) / 2, (W - w) / 2, h, w};
}

// timm RandomErasing._erase's box (count 1), transcribed.
std::optional<CropBox> timm_erase(int64_t H, int64_t W, std::mt19937_64& rng, double p) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (u(rng) > p) return std::nullopt;
  for (int a = 0; a < 10; ++a) {
    double target = (0.02 + (1.0 / 3 - 0.02) * u(rng)) * double(H * W);
    double ar = std::exp(std::log(0.3) + (std::log(1 / 0.3) - std::log(0.3)) * u(rng));
    int64_t h = int64_t(std::nearbyint(std::sqrt(target * ar)));
    int64_t w = int64_t(std::nearbyint(std::sqrt(target / ar)));
    if (w < W && h < H) {
      int64_t t = std::uniform_int_distribution<int64_t>(0, H - h)(rng);
      int64_t l = std::uniform_int_distribution<int64_t>(0, W - w)(rng);
      return CropBox{t, l, h, w};
    }
  }
  return std::nullopt;
}

// Largest gap between the two empirical CDFs of an integer feature (two-sample KS statistic).
double ks(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::map<int64_t, double> ca, cb;
  for (int64_t x : a) ca[x] += 1.0 / double(a.size());
  for (int64_t x : b) cb[x] += 1.0 / double(b.size());
  std::map<int64_t, int> keys;
  for (auto& [k, v] : ca) keys[k] = 1;
  for (auto& [k, v] : cb) keys[k] = 1;
  double fa = 0, fb = 0, worst = 0;
  for (auto& [k, unused] : keys) {
    fa += ca.count(k) ? ca[k] : 0;
    fb += cb.count(k) ? cb[k] : 0;
    worst = std::max(worst, std::abs(fa - fb));
  }
  return worst;
}

struct Features {
  std::vector<int64_t> top, left, height, width, area;
  int64_t none = 0;
  void add(const std::optional<CropBox>& b) {
    if (!b) {
      ++none;
      return;
    }
    top.push_back(b->top), left.push_back(b->left), height.push_back(b->height), width.push_back(b->width);
    area.push_back(b->height * b->width);
  }
};

// Two-sample KS at 60000 draws each: the 99.99% critical value is about 2.0 * sqrt(2 / n) ~ 0.012.
constexpr int kDraws = 60000;
constexpr double kKs = 0.013;

}  // namespace

TEST_CASE("random_resized_crop_params follows timm's rules (distributions over many draws)") {
  struct Case { int64_t H, W; double s0, s1; };
  // Fashion-MNIST's training crop; ImageNet's scale on a wide image (frequent rejections); a
  // tall image whose fallback is taken often.
  for (Case c : {Case{28, 28, 0.35, 1.0}, Case{20, 50, 0.08, 1.0}, Case{60, 12, 0.5, 1.0}}) {
    CAPTURE(c.H);
    Features ours, ref;
    std::mt19937_64 rng(123);
    for (int i = 0; i < kDraws; ++i) {
      Generator g(77, uint64_t(i));
      CropBox b = random_resized_crop_params(c.H, c.W, g, {.scale_min = c.s0, .scale_max = c.s1});
      CHECK((b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1 && b.top + b.height <= c.H &&
             b.left + b.width <= c.W));
      ours.add(b);
      ref.add(timm_rrc(c.H, c.W, rng, c.s0, c.s1, 3.0 / 4, 4.0 / 3));
    }
    CHECK(ks(ours.height, ref.height) < kKs);
    CHECK(ks(ours.width, ref.width) < kKs);
    CHECK(ks(ours.top, ref.top) < kKs);
    CHECK(ks(ours.left, ref.left) < kKs);
    CHECK(ks(ours.area, ref.area) < kKs);
  }
}

TEST_CASE("random_resized_crop_params: the centre fallback, determinism") {
  Generator g(1, 1);
  // 10x100 with area >= 90%: every attempt needs h >= 26 > 10, so the fallback runs: the whole
  // height, the widest allowed ratio (4/3), centred.
  CHECK(random_resized_crop_params(10, 100, g, {.scale_min = 0.9}) == CropBox{0, 43, 10, 13});
  CHECK(random_resized_crop_params(100, 10, g, {.scale_min = 0.9}) == CropBox{43, 0, 13, 10});
  // Ratios 2..3 on a 5x5 image never fit (w >= 7): the fallback keeps the width and takes
  // h = round(5 / 2) = round(2.5) = 2, Python's half-to-even rounding, centred at row 1.
  CHECK(random_resized_crop_params(5, 5, g, {.scale_min = 1.0, .scale_max = 1.0, .ratio_min = 2, .ratio_max = 3}) ==
        CropBox{1, 0, 2, 5});
  // Areas above the image's never fit either; a ratio in range falls back to the whole image.
  CHECK(random_resized_crop_params(6, 5, g, {.scale_min = 1.5, .scale_max = 2.0}) == CropBox{0, 0, 6, 5});
  // The same generator state, the same box; the draws advance the generator.
  Generator a(9, 4), b(9, 4);
  CropBox first = random_resized_crop_params(28, 28, a);
  CHECK(random_resized_crop_params(28, 28, b) == first);
  CHECK(a.offset() == b.offset());
  CHECK(a.offset() > 0);
  CHECK_THROWS_WITH_AS(random_resized_crop_params(0, 5, g), doctest::Contains("at least 1x1"), std::invalid_argument);
  CHECK_THROWS_AS(random_resized_crop_params(5, 5, g, {.scale_min = 0.5, .scale_max = 0.2}), std::invalid_argument);
  CHECK(center_crop_box(28, 28, 24, 23) == CropBox{2, 2, 24, 23});
  CHECK(center_crop_box(7, 8, 4, 5) == CropBox{1, 1, 4, 5});
  CHECK_THROWS_AS(center_crop_box(7, 8, 9, 5), std::invalid_argument);
}

TEST_CASE("random_erasing_params follows timm's rules (probability, then the box)") {
  for (double p : {0.25, 1.0}) {
    Features ours, ref;
    std::mt19937_64 rng(5);
    for (int i = 0; i < kDraws; ++i) {
      Generator g(3, uint64_t(i));
      std::optional<CropBox> b = random_erasing_params(32, 24, g, {.probability = p});
      if (b) CHECK((b->top + b->height <= 32 && b->left + b->width <= 24 && b->height < 32 && b->width < 24));
      ours.add(b);
      ref.add(timm_erase(32, 24, rng, p));
    }
    // Erased fraction: p times the chance that one of 10 attempts fits; binomial sd <= 0.002.
    CHECK(std::abs(double(ours.none - ref.none) / kDraws) < 0.012);
    CHECK(ks(ours.height, ref.height) < kKs);
    CHECK(ks(ours.width, ref.width) < kKs);
    CHECK(ks(ours.top, ref.top) < kKs);
    CHECK(ks(ours.left, ref.left) < kKs);
  }
  Generator g;
  CHECK_FALSE(random_erasing_params(32, 32, g, {.probability = 0.0}));
}

TEST_CASE("random draws: ranges, uniformity, determinism") {
  Generator g(11, 3);
  std::vector<int> hist(7, 0);
  double sum = 0;
  for (int i = 0; i < 70000; ++i) {
    int64_t k = draw_int(g, -3, 3);
    REQUIRE((k >= -3 && k <= 3));
    hist[size_t(k + 3)]++;
    double u = draw_uniform01(g);
    REQUIRE((u >= 0 && u < 1));
    sum += u;
  }
  for (int c : hist) CHECK(std::abs(c - 10000) < 450);  // 4.5 sd of a binomial(70000, 1/7)
  CHECK(std::abs(sum / 70000 - 0.5) < 0.005);
  CHECK(draw_int(g, 5, 5) == 5);
  CHECK_THROWS_AS(draw_int(g, 2, 1), std::invalid_argument);
  Generator a(1, 2), b(1, 2);
  CHECK(draw_uniform(a, 2, 3) == draw_uniform(b, 2, 3));
  const double x = draw_uniform(a, 2, 3);
  CHECK((x >= 2 && x < 3));
}
