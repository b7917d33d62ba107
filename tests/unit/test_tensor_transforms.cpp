// tensor_transforms (data/tensor_transforms.h): crop + resize against engine interpolate on the
// cropped view (bit for bit) and against plain reference loops written from the filter
// definitions, flip / normalise / erase against plain loops, and the errors.
#include <cmath>
#include <cstring>

#include "data/random_draws.h"
#include "data/tensor_transforms.h"
#include "engine/ops/interpolate.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor ac = a.contiguous(), bc = b.contiguous();
  return a.shape() == b.shape() && std::memcmp(ac.raw_data(), bc.raw_data(), size_t(a.numel()) * 4) == 0;
}

// engine interpolate on the crop, (C, h, w) -> (C, OH, OW)
Tensor via_interpolate(const Tensor& src, const CropBox& b, int64_t oh, int64_t ow, const chw::ResizeOptions& o) {
  Tensor crop = src.narrow(1, b.top, b.height).narrow(2, b.left, b.width).contiguous().unsqueeze(0);
  return interpolate(crop, {.size = {oh, ow},
                            .mode = o.interp == chw::Interp::bicubic ? "bicubic" : "bilinear",
                            .antialias = o.antialias})
      .squeeze(0);
}

}  // namespace

TEST_CASE("chw::resized_crop equals interpolate on the cropped view, bit for bit") {
  struct Case { int64_t C, H, W; CropBox box; int64_t oh, ow; };
  const Case cases[] = {
      {1, 28, 28, {0, 0, 28, 28}, 32, 32},  // eval upscale
      {1, 28, 28, {3, 5, 17, 21}, 32, 32},  // a crop, up
      {3, 40, 30, {2, 1, 37, 29}, 9, 7},    // down by ~4: the antialias filter is wide
      {2, 13, 11, {4, 0, 1, 11}, 5, 1},     // a one-row box, one output column
      {1, 9, 9, {0, 0, 9, 9}, 9, 9},        // same size: a copy
      {1, 9, 9, {2, 2, 5, 5}, 5, 3},        // one side kept
  };
  for (const Case& c : cases) {
    for (chw::Interp interp : {chw::Interp::bilinear, chw::Interp::bicubic}) {
      for (bool aa : {false, true}) {
        CAPTURE(c.H);
        CAPTURE(c.oh);
        CAPTURE(aa);
        const chw::ResizeOptions o{.interp = interp, .antialias = aa};
        Tensor src = test::test_tensor({c.C, c.H, c.W}, 7);
        Tensor y = chw::resized_crop(src, c.box, c.oh, c.ow, o);
        Tensor ref = via_interpolate(src, c.box, c.oh, c.ow, o);
        CHECK(same_bits(y, ref));
        RV_EXPECT_CLOSE(y, ref, .rtol = 0, .atol = 0);
        // A non-contiguous source (last two dims stored transposed) gives the same values.
        Tensor nc = test::test_noncontiguous({c.C, c.H, c.W}, 7);
        REQUIRE_FALSE(nc.is_contiguous());
        CHECK(same_bits(chw::resized_crop(nc, c.box, c.oh, c.ow, o), y));
      }
    }
  }
}

TEST_CASE("chw::resize against plain loops: bilinear 2x down with antialias, and bilinear up") {
  // Antialiased 2x shrink: the triangle filter widened to 4 taps, 1/8 3/8 3/8 1/8 inside,
  // renormalised at the border (a truncated filter).
  const int64_t H = 6, W = 10;
  Tensor x = test::test_tensor({1, H, W}, 3);
  Tensor y = chw::resize(x, H / 2, W / 2, {.interp = chw::Interp::bilinear, .antialias = true});
  const float* p = x.data<float>();
  auto taps = [](int64_t o, int64_t in, std::vector<std::pair<int64_t, double>>& t) {
    t.clear();
    const double w[4] = {1, 3, 3, 1};
    double total = 0;
    for (int k = 0; k < 4; ++k) {
      int64_t i = 2 * o - 1 + k;
      if (i < 0 || i >= in) continue;
      t.push_back({i, w[k]});
      total += w[k];
    }
    for (auto& e : t) e.second /= total;
  };
  std::vector<double> ref;
  std::vector<std::pair<int64_t, double>> th, tw;
  for (int64_t oh = 0; oh < H / 2; ++oh)
    for (int64_t ow = 0; ow < W / 2; ++ow) {
      taps(oh, H, th);
      taps(ow, W, tw);
      double acc = 0;
      for (auto [i, a] : th)
        for (auto [j, b] : tw) acc += a * b * p[i * W + j];
      ref.push_back(acc);
    }
  RV_EXPECT_CLOSE(y, from_vector(ref, {1, H / 2, W / 2}), .rtol = 1e-6, .atol = 1e-6);

  // Plain bilinear up 4 -> 7 (align_corners = false; source clamped at 0 and at the last pixel).
  Tensor x1 = test::test_tensor({1, 1, 4}, 5);
  Tensor y1 = chw::resize(x1, 1, 7, {.interp = chw::Interp::bilinear, .antialias = false});
  const float* q = x1.data<float>();
  std::vector<double> r1;
  for (int64_t o = 0; o < 7; ++o) {
    double src = std::max((o + 0.5) * 4.0 / 7.0 - 0.5, 0.0);
    int64_t i0 = int64_t(std::floor(src)), i1 = std::min<int64_t>(i0 + 1, 3);
    double f = src - double(i0);
    r1.push_back((1 - f) * q[i0] + f * q[i1]);
  }
  RV_EXPECT_CLOSE(y1, from_vector(r1, {1, 1, 7}), .rtol = 1e-6, .atol = 1e-6);
  // A constant image stays constant under every filter (the weights sum to 1).
  for (bool aa : {false, true})
    for (chw::Interp in : {chw::Interp::bilinear, chw::Interp::bicubic})
      RV_EXPECT_CLOSE(chw::resize(full({2, 11, 7}, 0.25), 5, 13, {.interp = in, .antialias = aa}),
                      full({2, 5, 13}, 0.25), .rtol = 1e-6, .atol = 1e-6);
}

TEST_CASE("chw::resized_crop_into writes into a batch row in place, touching nothing else") {
  Tensor batch = full({3, 1, 8, 8}, -7.0);
  Tensor src = test::test_tensor({1, 28, 28}, 1);
  chw::resized_crop_into(src, {2, 3, 20, 20}, batch.select(0, 1));
  RV_EXPECT_CLOSE(batch.select(0, 1), chw::resized_crop(src, {2, 3, 20, 20}, 8, 8), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(batch.select(0, 0), full({1, 8, 8}, -7.0), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(batch.select(0, 2), full({1, 8, 8}, -7.0), .rtol = 0, .atol = 0);
}

TEST_CASE("chw::hflip_, normalize_ and erase_ against plain loops") {
  Tensor x = test::test_tensor({2, 3, 5}, 9);
  Tensor orig = x.clone();
  chw::hflip_(x);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t w = 0; w < 5; ++w)
        CHECK(x.data<float>()[(c * 3 + h) * 5 + w] == orig.data<float>()[(c * 3 + h) * 5 + (4 - w)]);
  chw::hflip_(x);
  CHECK(same_bits(x, orig));

  chw::normalize_(x, {0.5, -0.25}, {2.0, 0.5});
  for (int64_t i = 0; i < 30; ++i) {
    const float m = i < 15 ? 0.5f : -0.25f, s = i < 15 ? 2.0f : 0.5f;
    CHECK(x.data<float>()[i] == (orig.data<float>()[i] - m) / s);
  }
  Tensor one = orig.clone();
  chw::normalize_(one, {0.2860}, {0.3530});  // one value for every channel
  for (int64_t i = 0; i < 30; ++i) CHECK(one.data<float>()[i] == (orig.data<float>()[i] - 0.2860f) / 0.3530f);

  const CropBox box{1, 2, 2, 3};
  auto inside = [&](int64_t h, int64_t w) { return h >= 1 && h < 3 && w >= 2 && w < 5; };
  for (chw::EraseMode mode : {chw::EraseMode::constant, chw::EraseMode::per_channel, chw::EraseMode::per_pixel}) {
    Tensor e = orig.clone();
    Generator g(4, 2);
    chw::erase_(e, box, mode, g);
    Generator g2(4, 2);  // the draws erase_ made: normals of the patch or of one per channel
    Tensor normals = mode == chw::EraseMode::per_pixel     ? randn({2 * 2 * 3}, g2)
                     : mode == chw::EraseMode::per_channel ? randn({2}, g2)
                                                           : Tensor();
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 5; ++w) {
          const float got = e.data<float>()[(c * 3 + h) * 5 + w];
          if (!inside(h, w)) {
            CHECK(got == orig.data<float>()[(c * 3 + h) * 5 + w]);
          } else if (mode == chw::EraseMode::constant) {
            CHECK(got == 0.0f);
          } else if (mode == chw::EraseMode::per_channel) {
            CHECK(got == normals.data<float>()[c]);
          } else {
            CHECK(got == normals.data<float>()[(c * 2 + (h - 1)) * 3 + (w - 2)]);
          }
        }
  }
}

TEST_CASE("chw transforms: errors name the function and the argument") {
  Tensor x = zeros({1, 4, 4});
  CHECK_THROWS_WITH_AS(chw::resized_crop(x, {0, 0, 5, 4}, 2, 2), doctest::Contains("is not inside the 4x4 image"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::resized_crop(x, {0, 0, 0, 4}, 2, 2), doctest::Contains("chw::resized_crop_into: the box"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::resize(zeros({4, 4}), 2, 2), "chw::resize: src must be a float32 (C, H, W) tensor, got float32 [4, 4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::resize(x, 0, 2), doctest::Contains("at least 1x1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::resized_crop_into(x, {0, 0, 4, 4}, zeros({2, 2, 2})), doctest::Contains("out has 2 channels"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::hflip_(zeros({1, 4, 4}).transpose(1, 2)), "chw::hflip_: img must be contiguous (it is written in place)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::normalize_(zeros({3, 2, 2}), {0.1, 0.2}, {1.0}), doctest::Contains("mean has 2 values"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(chw::normalize_(zeros({1, 2, 2}), {0.1}, {0.0}), doctest::Contains("std must be > 0"),
                       std::invalid_argument);
  Generator g;
  CHECK_THROWS_AS(chw::erase_(x, {3, 3, 2, 2}, chw::EraseMode::constant, g), std::invalid_argument);
  chw::erase_(x, {1, 1, 0, 0}, chw::EraseMode::per_pixel, g);  // an empty box is a no-op
  RV_EXPECT_CLOSE(x, zeros({1, 4, 4}), .rtol = 0, .atol = 0);
}
