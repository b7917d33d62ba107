// Properties of the segmentation transforms (data/seg_transforms.h) that the fixture test
// (tests/fixtures/test_seg_transforms.cpp, against OpenCV) does not pin down: nearest resize keeps
// label values, bilinear of a constant is that constant, the crop honours cat_max_ratio and draws
// as mmseg does (one box, or up to 11), the photometric draws stay in mmseg's ranges (hue excludes
// +18 as numpy's randint does), padding values, normalisation, and the errors.
#include <set>

#include "data/image_ops.h"
#include "data/random_draws.h"
#include "data/seg_transforms.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;

namespace {

Image random_labels(int h, int w, uint64_t seed, int classes) {
  Generator g(seed, 0);
  Image im(h, w, 1);
  for (uint8_t& v : im.pixels) v = draw_bernoulli(g, 0.1) ? 255 : uint8_t(draw_int(g, 0, classes - 1));
  return im;
}

Image random_rgb(int h, int w, uint64_t seed) {
  Generator g(seed, 1);
  Image im(h, w, 3);
  for (uint8_t& v : im.pixels) v = uint8_t(draw_int(g, 0, 255));
  return im;
}

}  // namespace

TEST_CASE("nearest resize keeps label values; bilinear keeps constants and works per channel") {
  const Image lab = random_labels(37, 53, 1, 5);
  std::set<int> in(lab.pixels.begin(), lab.pixels.end());
  for (auto [h, w] : {std::pair{19, 26}, {80, 111}, {1, 1}, {37, 53}, {200, 7}}) {
    INFO(h << "x" << w);
    const Image r = cv_resize_nearest(lab, h, w);
    REQUIRE(r.height == h);
    REQUIRE(r.width == w);
    for (uint8_t v : r.pixels) CHECK(in.count(v) == 1);
    const Image c = cv_resize_linear(Image(37, 53, 3, 77), h, w);
    for (uint8_t v : c.pixels) CHECK(v == 77);
  }
  CHECK(cv_resize_nearest(lab, 37, 53).pixels == lab.pixels);  // same size: a copy
  const Image rgb = random_rgb(23, 31, 2);
  CHECK(cv_resize_linear(rgb, 23, 31).pixels == rgb.pixels);
  // Channel c of the 3-channel result = the 1-channel resize of channel c.
  const Image r3 = cv_resize_linear(rgb, 40, 17);
  for (int c = 0; c < 3; ++c) {
    Image one(23, 31, 1);
    for (size_t i = 0; i < one.pixels.size(); ++i) one.pixels[i] = rgb.pixels[i * 3 + size_t(c)];
    const Image r1 = cv_resize_linear(one, 40, 17);
    for (size_t i = 0; i < r1.pixels.size(); ++i) CHECK(r1.pixels[i] == r3.pixels[i * 3 + size_t(c)]);
  }
  CHECK_THROWS_WITH_AS(cv_resize_linear(rgb, 0, 5), doctest::Contains("cv_resize_linear: output size: expected >= 1x1"),
                       std::invalid_argument);
  CHECK_THROWS_AS(cv_resize_nearest(Image(), 3, 3), std::invalid_argument);
}

TEST_CASE("random resize: ratio in range, target truncated, keep-ratio image and labels together") {
  Generator g(3, 0);
  for (int i = 0; i < 200; ++i) {
    const double r = draw_resize_ratio(g, 0.5, 2.0);
    CHECK(r >= 0.5);
    CHECK(r < 2.0);
  }
  CHECK(random_resize_target({2048, 512}, 0.73) == std::array<int64_t, 2>{1495, 373});  // int(1495.04), int(373.76)
  Image img = random_rgb(37, 53, 4), lab = random_labels(37, 53, 4, 3);
  seg_resize_keep_ratio(img, &lab, {64, 24});  // min(64 / 53, 24 / 37) = 0.6486 -> 24 x 34
  CHECK(img.height == 24);
  CHECK(img.width == 34);
  CHECK(lab.height == 24);
  CHECK(lab.width == 34);
  Image bad = random_labels(10, 10, 1, 2);
  CHECK_THROWS_WITH_AS(seg_resize_keep_ratio(img, &bad, {64, 24}), doctest::Contains("the label map is 10x10"),
                       std::invalid_argument);
  CHECK_THROWS_AS(draw_resize_ratio(g, 0, 1), std::invalid_argument);
}

TEST_CASE("seg_crop_accepted: >= 2 classes, the largest under the ratio, 255 not counted") {
  Image m(1, 100, 1, 0);
  CHECK_FALSE(seg_crop_accepted(m, {0, 0, 1, 100}, 0.75));  // one class
  for (int x = 50; x < 100; ++x) m.pixels[size_t(x)] = 1;
  CHECK(seg_crop_accepted(m, {0, 0, 1, 100}, 0.75));         // 50 / 50
  CHECK_FALSE(seg_crop_accepted(m, {0, 0, 1, 100}, 0.5));    // 0.5 is not < 0.5
  CHECK_FALSE(seg_crop_accepted(m, {0, 0, 1, 60}, 0.75));    // 50 / 60
  for (int x = 70; x < 100; ++x) m.pixels[size_t(x)] = 255;  // 50 of 0, 20 of 1, 30 ignored: 50 / 70
  CHECK(seg_crop_accepted(m, {0, 0, 1, 100}, 0.75));
  for (int x = 50; x < 70; ++x) m.pixels[size_t(x)] = 255;   // only class 0 left
  CHECK_FALSE(seg_crop_accepted(m, {0, 0, 1, 100}, 0.75));
  CHECK_FALSE(seg_crop_accepted(Image(4, 4, 1, 255), {0, 0, 4, 4}, 0.75));  // all ignored
}

TEST_CASE("draw_seg_crop: mmseg's loop (1 box, or up to 11), cat_max_ratio honoured where possible") {
  // Left half class 0, right half class 1, with a band of class 2 at the bottom.
  Image lab(64, 96, 1);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 96; ++x) lab.at(y, x, 0) = y >= 56 ? 2 : x < 48 ? 0 : 1;
  int accepted = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Generator g(seed, 0);
    const CropBox b = draw_seg_crop(lab, g, {.height = 32, .width = 32, .cat_max_ratio = 0.75});
    CHECK(b.height == 32);
    CHECK(b.width == 32);
    CHECK(b.top >= 0);
    CHECK(b.top <= 32);
    CHECK(b.left >= 0);
    CHECK(b.left <= 64);
    const bool ok = seg_crop_accepted(lab, b, 0.75);
    accepted += ok;
    // Replay the draws: a rejected box is only kept after 10 failed checks (11 boxes drawn).
    Generator r(seed, 0);
    int drawn = 0;
    CropBox last;
    select_seg_crop(
        lab,
        [&] {
          ++drawn;
          last = {draw_int(r, 0, 32), draw_int(r, 0, 64), 32, 32};
          return last;
        },
        {.height = 32, .width = 32, .cat_max_ratio = 0.75});
    CHECK(last == b);
    if (!ok) CHECK(drawn == 11);
    Generator again(seed, 0);
    CHECK(draw_seg_crop(lab, again, {.height = 32, .width = 32, .cat_max_ratio = 0.75}) == b);
  }
  CHECK(accepted >= 95);  // the acceptable band is wide: retries almost always find one
  // One class everywhere: every check fails, 11 boxes are drawn (22 draws), the last is kept.
  Generator g(5, 0);
  const CropBox b = draw_seg_crop(Image(64, 96, 1, 3), g, {.height = 32, .width = 32});
  Generator r(5, 0);
  CropBox want;
  for (int i = 0; i < 11; ++i) want = {draw_int(r, 0, 32), draw_int(r, 0, 64), 32, 32};
  CHECK(b == want);
  CHECK(g.offset() == r.offset());
  // cat_max_ratio >= 1: one box, no check.
  Generator g1(5, 0), r1(5, 0);
  const CropBox one = draw_seg_crop(Image(64, 96, 1, 3), g1, {.height = 32, .width = 32, .cat_max_ratio = 1.0});
  CHECK(one == CropBox{draw_int(r1, 0, 32), draw_int(r1, 0, 64), 32, 32});
  CHECK_THROWS_WITH_AS(draw_seg_crop(random_rgb(4, 4, 1), g, {}), doctest::Contains("1-channel label map"),
                       std::invalid_argument);
}

TEST_CASE("draw_seg_crop on an image smaller than the crop: the whole image") {
  Generator g(1, 0);
  const CropBox b = draw_seg_crop(random_labels(20, 30, 1, 4), g, {.height = 32, .width = 24});
  CHECK(b == CropBox{0, b.left, 20, 24});
  CHECK(b.left >= 0);
  CHECK(b.left <= 6);
  CHECK(clip_crop_box({5, 25, 32, 32}, 20, 30) == CropBox{5, 25, 15, 5});
}

TEST_CASE("photometric draws: mmseg's ranges, hue in [-18, 17]") {
  std::set<int> hues;
  int bright = 0, first = 0;
  for (uint64_t s = 0; s < 3000; ++s) {
    Generator g(s, 7);
    const PhotoMetricParams p = draw_photometric(g);
    if (p.brightness) {
      ++bright;
      CHECK(*p.brightness >= -32.f);
      CHECK(*p.brightness <= 32.f);
    }
    first += p.contrast_first;
    for (const auto& a : {p.contrast, p.saturation})
      if (a) {
        CHECK(*a >= 0.5f);
        CHECK(*a <= 1.5f);
      }
    if (p.hue) hues.insert(*p.hue);
  }
  CHECK(hues.size() == 36);
  CHECK(*hues.begin() == -18);
  CHECK(*hues.rbegin() == 17);
  CHECK(bright > 1300);
  CHECK(bright < 1700);
  CHECK(first > 1300);
  CHECK(first < 1700);
}

TEST_CASE("photometric ops: convert truncates and clips; no parameters, no change; HSV keeps greys") {
  Image im(1, 4, 3);
  const uint8_t px[12] = {0, 10, 100, 200, 250, 255, 1, 2, 3, 4, 5, 6};
  std::copy(px, px + 12, im.pixels.begin());
  Image b = im;
  photometric_convert_(b, 1.f, 10.7f);
  CHECK(b.pixels[0] == 10);   // 0 + 10.7 truncated
  CHECK(b.pixels[4] == 255);  // clipped
  Image c = im;
  photometric_convert_(c, 0.5f, 0.f);
  CHECK(c.pixels[1] == 5);
  CHECK(c.pixels[3] == 100);
  CHECK(c.pixels[6] == 0);  // 0.5 truncated
  Image same = random_rgb(9, 40, 3);
  const Image orig = same;
  photometric_distort_(same, {});
  CHECK(same.pixels == orig.pixels);
  // Greys have S = 0, so HSV and back is exact for them. Any colour comes back within 5 levels:
  // H is quantised to 2 degrees (0..179), and one step of H moves a channel by up to 255 / 30 = 8.5.
  Image grey(2, 256, 3);
  for (int x = 0; x < 256; ++x)
    for (int y = 0; y < 2; ++y)
      for (int ch = 0; ch < 3; ++ch) grey.at(y, x, ch) = uint8_t(x);
  Image g2 = grey;
  rgb_to_hsv_cv_(g2);
  for (int x = 0; x < 256; ++x) CHECK(g2.at(0, x, 1) == 0);
  hsv_to_rgb_cv_(g2);
  CHECK(g2.pixels == grey.pixels);
  Image rt = orig;
  rgb_to_hsv_cv_(rt);
  for (size_t i = 0; i < rt.pixels.size(); i += 3) CHECK(rt.pixels[i] < 180);
  hsv_to_rgb_cv_(rt);
  for (size_t i = 0; i < rt.pixels.size(); ++i) CHECK(std::abs(int(rt.pixels[i]) - int(orig.pixels[i])) <= 5);
  // A hue shift of 0 is that round trip.
  Image h0 = orig;
  photometric_distort_(h0, {.hue = 0});
  for (size_t i = 0; i < h0.pixels.size(); ++i) CHECK(std::abs(int(h0.pixels[i]) - int(orig.pixels[i])) <= 5);
  Image grey1(2, 2, 1);
  CHECK_THROWS_WITH_AS(photometric_distort_(grey1, {}), doctest::Contains("3-channel"), std::invalid_argument);
}

TEST_CASE("pad, normalise and label rows: values and padding") {
  const Image im = random_rgb(5, 7, 9);
  const Image p = pad_to(im, 8, 9, 0);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 9; ++x)
      for (int c = 0; c < 3; ++c) CHECK(p.at(y, x, c) == (y < 5 && x < 7 ? im.at(y, x, c) : 0));
  CHECK_THROWS_WITH_AS(pad_to(im, 4, 9, 0), doctest::Contains("cannot pad a 5x7 image to 4x9"), std::invalid_argument);
  Tensor t = full({3, 6, 8}, 9.0);
  normalize_pad_into(im, t);
  const float* d = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 8; ++x) {
        const float want = y < 5 && x < 7 ? (float(im.at(y, x, c)) - kSegMean[size_t(c)]) / kSegStd[size_t(c)] : 0.f;
        CHECK(d[(c * 6 + y) * 8 + x] == want);
      }
  const Image lab = random_labels(5, 7, 2, 4);
  Tensor l = zeros({6, 9}, DType::u8);
  label_pad_into(lab, l);
  const uint8_t* q = l.data<uint8_t>();
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 9; ++x) CHECK(q[y * 9 + x] == (y < 5 && x < 7 ? lab.at(y, x, 0) : 255));
  CHECK_THROWS_WITH_AS(normalize_pad_into(im, full({3, 4, 8}, 0.0)), doctest::Contains("normalize_pad_into: expected"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(label_pad_into(lab, zeros({6, 9}, DType::i64)), doctest::Contains("label_pad_into: expected"),
                       std::invalid_argument);
}
