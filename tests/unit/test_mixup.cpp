// test_mixup.cpp: Mixup / CutMix (data/mixup.h) against plain loops: mixed pixels, the CutMix
// box and its lam correction, smoothed mixed targets, the switch and mix probabilities, and the
// Beta / Gamma samplers' moments.
#include <doctest/doctest.h>

#include <cmath>

#include "data/mixup.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

constexpr int64_t B = 4, C = 2, H = 6, W = 5, K = 3;

Tensor images() { return test::test_tensor({B, C, H, W}, 7); }
Tensor labels() { return from_vector(std::vector<int64_t>{0, 2, 1, 2}, {B}); }

float px(const std::vector<float>& v, int64_t b, int64_t c, int64_t y, int64_t x) {
  return v[size_t(((b * C + c) * H + y) * W + x)];
}

// lam * smooth(y[b]) + (1 - lam) * smooth(y[B-1-b]) in double, for comparison.
double target_ref(int64_t b, int64_t k, double lam, double s) {
  const int64_t y[B] = {0, 2, 1, 2};
  auto sm = [&](int64_t cls) { return (k == cls ? 1.0 - s : 0.0) + s / K; };
  return lam * sm(y[b]) + (1 - lam) * sm(y[B - 1 - b]);
}

}  // namespace

TEST_CASE("mixup: off (no alpha) or not drawn (prob 0) leaves the images and gives smoothed one-hot targets") {
  for (double prob : {1.0, 0.0}) {
    data::MixupOptions o{.mixup_alpha = prob == 0.0 ? 0.8 : 0.0, .prob = prob, .label_smoothing = 0.1, .num_classes = K};
    data::Mixup mix(o);
    Generator g(3);
    const data::MixedBatch m = mix.apply(images(), labels(), g);
    CHECK(m.lam == 1.0);
    CHECK(m.images.to_vector<float>() == images().to_vector<float>());
    const std::vector<float> t = m.targets.to_vector<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) CHECK(t[size_t(b * K + k)] == doctest::Approx(target_ref(b, k, 1.0, 0.1)));
  }
}

TEST_CASE("mixup: every pixel is lam * x[b] + (1 - lam) * x[B-1-b]; targets mixed the same way") {
  data::Mixup mix({.mixup_alpha = 0.8, .label_smoothing = 0.1, .num_classes = K});
  Generator g(11, 5);
  const data::MixedBatch m = mix.apply(images(), labels(), g);
  CHECK(!m.cutmix);
  CHECK(m.lam > 0.0);
  CHECK(m.lam < 1.0);
  CHECK(g.offset() > 0);  // draws consumed
  const std::vector<float> x = images().to_vector<float>(), got = m.images.to_vector<float>();
  const float l = float(m.lam), r = float(1.0 - m.lam);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t xx = 0; xx < W; ++xx)
          // within rounding: the compiler may fuse the multiply-add (FMA) in one place and not the other
          CHECK(px(got, b, c, y, xx) ==
                doctest::Approx(px(x, b, c, y, xx) * l + px(x, B - 1 - b, c, y, xx) * r).epsilon(1e-6).scale(1e-6));
  const std::vector<float> t = m.targets.to_vector<float>();
  for (int64_t b = 0; b < B; ++b) {
    double row = 0;
    for (int64_t k = 0; k < K; ++k) {
      CHECK(t[size_t(b * K + k)] == doctest::Approx(target_ref(b, k, m.lam, 0.1)).epsilon(1e-6));
      row += t[size_t(b * K + k)];
    }
    CHECK(row == doctest::Approx(1.0).epsilon(1e-6));
  }
  // The same generator state gives the same batch.
  Generator g2(11, 5);
  CHECK(mix.apply(images(), labels(), g2).images.to_vector<float>() == got);
}

TEST_CASE("cutmix: the box comes from the mirrored sample, the rest is kept, lam = kept area") {
  int boxes_seen = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    data::Mixup mix({.cutmix_alpha = 1.0, .num_classes = K});
    Generator g(seed);
    const data::MixedBatch m = mix.apply(images(), labels(), g);
    REQUIRE(m.cutmix);
    const auto& bx = m.box;
    CHECK(0 <= bx.y0);
    CHECK(bx.y0 <= bx.y1);
    CHECK(bx.y1 <= H);
    CHECK(0 <= bx.x0);
    CHECK(bx.x0 <= bx.x1);
    CHECK(bx.x1 <= W);
    const double area = double((bx.y1 - bx.y0) * (bx.x1 - bx.x0));
    CHECK(m.lam == doctest::Approx(1.0 - area / double(H * W)));
    boxes_seen += area > 0;
    const std::vector<float> x = images().to_vector<float>(), got = m.images.to_vector<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t xx = 0; xx < W; ++xx) {
            const bool in = y >= bx.y0 && y < bx.y1 && xx >= bx.x0 && xx < bx.x1;
            CHECK(px(got, b, c, y, xx) == px(x, in ? B - 1 - b : b, c, y, xx));
          }
    const std::vector<float> t = m.targets.to_vector<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) CHECK(t[size_t(b * K + k)] == doctest::Approx(target_ref(b, k, m.lam, 0.0)));
  }
  CHECK(boxes_seen > 10);
}

TEST_CASE("mixup: with both on, switch_prob picks CutMix; over many batches both happen") {
  auto count_cutmix = [](double switch_prob) {
    data::Mixup mix({.mixup_alpha = 0.8, .cutmix_alpha = 1.0, .switch_prob = switch_prob, .num_classes = K});
    int n = 0;
    for (uint64_t s = 0; s < 200; ++s) {
      Generator g(1, s);
      n += mix.apply(images(), labels(), g).cutmix;
    }
    return n;
  };
  CHECK(count_cutmix(1.0) == 200);
  CHECK(count_cutmix(0.0) == 0);
  const int half = count_cutmix(0.5);
  CHECK(half > 70);
  CHECK(half < 130);
  data::Mixup sometimes({.mixup_alpha = 0.8, .prob = 0.3, .num_classes = K});
  int mixed = 0;
  for (uint64_t s = 0; s < 300; ++s) {
    Generator g(2, s);
    mixed += sometimes.apply(images(), labels(), g).lam != 1.0;
  }
  CHECK(mixed > 60);
  CHECK(mixed < 120);
}

TEST_CASE("mixup: the Beta and Gamma samplers have the right moments") {
  Generator g(42);
  for (double a : {0.2, 0.8, 1.0, 3.0}) {
    const int n = 4000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; ++i) {
      const double x = data::sample_beta(a, a, g);
      REQUIRE(x >= 0.0);
      REQUIRE(x <= 1.0);
      sum += x, sq += x * x;
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    CAPTURE(a);
    CHECK(mean == doctest::Approx(0.5).epsilon(0.06));
    CHECK(var == doctest::Approx(1.0 / (4 * (2 * a + 1))).epsilon(0.1));  // a^2 / ((2a)^2 (2a + 1))
  }
  for (double k : {0.5, 2.0, 7.5}) {
    double sum = 0;
    for (int i = 0; i < 4000; ++i) sum += data::sample_gamma(k, g);
    CHECK(sum / 4000 == doctest::Approx(k).epsilon(0.06));
  }
}

TEST_CASE("mixup: errors name the option") {
  CHECK_THROWS_WITH_AS(data::Mixup({.mixup_alpha = 0.8, .mode = "pair", .num_classes = K}),
                       doctest::Contains("aug.mixup_mode"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(data::Mixup({.mixup_alpha = -1, .num_classes = K}), doctest::Contains("aug.mixup"),
                       std::invalid_argument);
  data::Mixup mix({.mixup_alpha = 0.8, .num_classes = K});
  Generator g(0);
  CHECK_THROWS_WITH_AS(mix.apply(test::test_tensor({3, C, H, W}, 1), from_vector(std::vector<int64_t>{0, 1, 2}, {3}), g),
                       doctest::Contains("even"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(data::mixup_target(from_vector(std::vector<int64_t>{0, 5}, {2}), K, 1.0, 0.0),
                       doctest::Contains("label 5"), std::out_of_range);
}
