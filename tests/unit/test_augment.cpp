// The uint8 transforms and random augmentations of data/ (pil_resize, image_ops, augment,
// rand_augment, erasing boxes) against plain reference loops and their documented laws: the
// resize against a double-precision loop, the parameter samplers (ranges, fallbacks, coverage,
// determinism from the Generator), erasing, the RandAugment config parser and its argument
// ranges, and every error message. Pixel equality with Pillow / torchvision / timm is in
// tests/fixtures/test_transforms.cpp.
#include <cmath>
#include <map>
#include <set>

#include "data/augment.h"
#include "data/image_ops.h"
#include "data/rand_augment.h"
#include "data/tensor_transforms.h"
#include "tests/support/check.h"
#include "tests/support/noise_image.h"

using namespace rv;
using namespace rv::data;
using rv::test::noise_image;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The resize written plainly: for each output pixel, both axes' normalised weights in double,
// the 2-D sum in double, rounded. Pillow rounds each separable pass to 8 bits and its weights to
// 22-bit fixed point, so the two agree within 1 level (2 where a horizontal rounding feeds a
// large vertical lobe: bicubic overshoot).
double kernel(double x, Interp in) {
  x = std::fabs(x);
  if (in == Interp::bilinear) return x < 1 ? 1 - x : 0;
  const double a = -0.5;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
std::vector<std::vector<std::pair<int, double>>> weights(int in, int out, Interp interp) {
  const double scale = double(in) / out, fs = std::max(scale, 1.0), support = (interp == Interp::bilinear ? 1 : 2) * fs;
  std::vector<std::vector<std::pair<int, double>>> w(out);
  for (int i = 0; i < out; ++i) {
    const double c = (i + 0.5) * scale;
    double sum = 0;
    for (int j = std::max(0, int(c - support + 0.5)); j < std::min(in, int(c + support + 0.5)); ++j) {
      const double k = kernel((j - c + 0.5) / fs, interp);
      w[i].push_back({j, k});
      sum += k;
    }
    for (auto& p : w[i]) p.second /= sum;
  }
  return w;
}
Image reference_resize(const Image& im, int oh, int ow, Interp interp) {
  auto wy = weights(im.height, oh, interp), wx = weights(im.width, ow, interp);
  Image out(oh, ow, im.channels);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      for (int c = 0; c < im.channels; ++c) {
        double s = 0;
        for (auto [yy, a] : wy[y])
          for (auto [xx, b] : wx[x]) s += a * b * im.at(yy, xx, c);
        out.at(y, x, c) = uint8_t(std::clamp(std::lround(s), 0L, 255L));
      }
  return out;
}

}  // namespace

TEST_CASE("resize: against a plain double-precision loop, every shape and both filters") {
  const Image im = noise_image(23, 31, 3, 1);
  for (Interp interp : {Interp::bilinear, Interp::bicubic})
    for (auto [h, w] : std::vector<std::pair<int, int>>{{11, 13}, {46, 62}, {23, 9}, {5, 31}, {1, 1}, {3, 90}}) {
      INFO(interp_name(interp) << " " << h << "x" << w);
      // A smooth image, so the 8-bit intermediate of the separable passes stays within a level.
      Image smooth(23, 31, 3);
      for (int y = 0; y < 23; ++y)
        for (int x = 0; x < 31; ++x)
          for (int c = 0; c < 3; ++c) smooth.at(y, x, c) = uint8_t(100 + 60 * std::sin(x * 0.3 + c) * std::cos(y * 0.2));
      Image got = resize(smooth, h, w, interp), want = reference_resize(smooth, h, w, interp);
      int worst = 0;
      for (size_t i = 0; i < got.pixels.size(); ++i) worst = std::max(worst, std::abs(got.pixels[i] - want.pixels[i]));
      CHECK(worst <= 1);
    }
  // Same size is a copy; a grey image works; a crop view honours its row stride.
  CHECK(resize(im, 23, 31, Interp::bicubic).pixels == im.pixels);
  const Image g = noise_image(9, 7, 1, 2);
  CHECK(resize(g, 4, 3, Interp::bilinear).channels == 1);
  CHECK(resize(crop_view(im, 2, 3, 10, 12), 5, 6, Interp::bicubic).pixels == resize(crop(im, 2, 3, 10, 12), 5, 6, Interp::bicubic).pixels);
  CHECK(error_of([&] { resize(im, 0, 5, Interp::bicubic); }).find("resize: expected a non-empty") == 0);
  CHECK(error_of([&] { crop_view(im, 20, 0, 4, 4); }).find("crop: rectangle") == 0);
  CHECK(error_of([] { interp_from_name("lanczos"); }).find("\"bilinear\" or \"bicubic\"") != std::string::npos);
}

TEST_CASE("crops, flip, short-side resize: torchvision's rounding") {
  const Image im = noise_image(10, 15, 3, 3);
  // (15 - 6) / 2 = 4.5 rounds half to even -> 4; (10 - 7) / 2 = 1.5 -> 2.
  CHECK(center_crop(im, 7, 6).pixels == crop(im, 2, 4, 7, 6).pixels);
  CHECK(error_of([&] { center_crop(im, 11, 3); }).find("center_crop: crop 11x3 is larger") == 0);
  const Image f = hflip(im);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 15; ++x)
      for (int c = 0; c < 3; ++c) CHECK(f.at(y, x, c) == im.at(y, 14 - x, c));
  CHECK(hflip(f).pixels == im.pixels);
  const Image r = resize_short_side(im, 4, Interp::bicubic);
  CHECK(r.height == 4);
  CHECK(r.width == 6);  // int(4 * 15 / 10)
  CHECK(resize_short_side(noise_image(15, 10, 1, 4), 7, Interp::bilinear).height == 10);  // int(7 * 15 / 10) = 10
}

TEST_CASE("RandomDraws: ranges, coverage, determinism") {
  Generator g1(7, 3), g2(7, 3), g3(7, 4);
  RandomDraws a(g1), b(g2), c(g3);
  std::set<int64_t> seen;
  double sum = 0, sum2 = 0;
  bool differs = false;
  for (int i = 0; i < 4000; ++i) {
    const double u = a.uniform();
    CHECK(u == b.uniform());
    differs |= u != c.uniform();
    CHECK(u >= 0.0);
    CHECK(u < 1.0);
    const int64_t k = a.randint(-2, 3);
    CHECK(k == b.randint(-2, 3));
    CHECK(k >= -2);
    CHECK(k <= 3);
    seen.insert(k);
    const double n = a.normal(1.0, 2.0);
    b.normal(1.0, 2.0);
    sum += n, sum2 += n * n;
  }
  CHECK(differs);
  CHECK(seen.size() == 6);
  CHECK(std::fabs(sum / 4000 - 1.0) < 0.15);
  CHECK(std::fabs(std::sqrt(sum2 / 4000 - (sum / 4000) * (sum / 4000)) - 2.0) < 0.15);
  std::vector<int> p = a.permutation(9);
  std::sort(p.begin(), p.end());
  for (int i = 0; i < 9; ++i) CHECK(p[i] == i);
  CHECK(error_of([&] { a.randint(3, 2); }).find("randint: empty range") == 0);
}

TEST_CASE("RandomResizedCrop params: inside the image, scale and ratio respected, torchvision's fallback") {
  // The pipeline draws its box with augment_params.h's rules from RandomDraws' generator.
  Generator g(1);
  RandomDraws rd(g);
  const RandomResizedCropOptions opt;
  for (int i = 0; i < 500; ++i) {
    const CropBox b = random_resized_crop_params(100, 80, rd.generator(), opt);
    CHECK(b.top >= 0);
    CHECK(b.left >= 0);
    CHECK(b.top + b.height <= 100);
    CHECK(b.left + b.width <= 80);
    const double area = double(b.height) * b.width / 8000.0, ratio = double(b.width) / b.height;
    // Rounding w and h to integers moves area and ratio a little past the sampled bounds.
    CHECK(area >= 0.08 * 0.8);
    CHECK(area <= 1.0);
    CHECK(ratio >= 0.75 * 0.85);
    CHECK(ratio <= 4.0 / 3.0 / 0.85);
  }
  // 1 x 200: no try fits, the fallback is the centred crop cut to the widest allowed ratio.
  CHECK(random_resized_crop_params(1, 200, rd.generator(), opt) == CropBox{0, 99, 1, 1});
  // A scale above 1 never fits: the whole image (its ratio 1 is allowed).
  CHECK(random_resized_crop_params(30, 30, rd.generator(), {.scale_min = 2.0, .scale_max = 3.0}) == CropBox{0, 0, 30, 30});
  // Tall image, fallback: height cut to round(width / (3/4)).
  CHECK(random_resized_crop_params(100, 30, rd.generator(), {.scale_min = 2.0, .scale_max = 3.0}) == CropBox{30, 0, 40, 30});
  CHECK(error_of([&] { random_resized_crop_params(0, 5, rd.generator(), opt); }).find("random_resized_crop_params: the image must be at least 1x1") == 0);
  // resized_crop = crop then resize.
  const Image im = noise_image(20, 30, 3, 5);
  CHECK(resized_crop(im, {3, 4, 10, 12}, 8, 8, Interp::bicubic).pixels == resize(crop(im, 3, 4, 10, 12), 8, 8, Interp::bicubic).pixels);
}

TEST_CASE("ColorJitter and 3-Augment params: ranges, off switches, every choice") {
  Generator g(2);
  RandomDraws rd(g);
  std::set<std::vector<int>> orders;
  for (int i = 0; i < 300; ++i) {
    const ColorJitterParams p = color_jitter_params({0.4f, 0.3f, 0.0f, 0.1f}, rd);
    REQUIRE(p.brightness);
    CHECK(*p.brightness >= 0.6f);
    CHECK(*p.brightness <= 1.4f);
    CHECK(*p.contrast >= 0.7f);
    CHECK(*p.contrast <= 1.3f);
    CHECK(!p.saturation);  // 0 turns it off
    CHECK(std::fabs(*p.hue) <= 0.1f);
    orders.insert({p.order.begin(), p.order.end()});
  }
  CHECK(orders.size() > 12);
  CHECK(error_of([&] { color_jitter_params({0, 0, 0, 0.7f}, rd); }).find("hue must be in [0, 0.5]") != std::string::npos);
  std::map<ThreeAugmentOp, int> ops;
  for (int i = 0; i < 300; ++i) {
    const ThreeAugmentParams p = three_augment_params(0.3f, rd);
    ++ops[p.op];
    if (p.op == ThreeAugmentOp::gaussian_blur) {
      CHECK(p.blur_radius >= 0.1f);
      CHECK(p.blur_radius < 2.0f);
    }
    REQUIRE(p.jitter);
    CHECK(!p.jitter->hue);
  }
  CHECK(ops.size() == 3);
  CHECK(!three_augment_params(0.0f, rd).jitter);
  // Factors of 1 leave the image unchanged (a hue shift of 0 does not: PIL's HSV round trip is
  // lossy, and torchvision's adjust_hue(0) changes pixels too).
  const Image im = noise_image(8, 9, 3, 6);
  ColorJitterParams id;
  id.brightness = id.contrast = id.saturation = 1.0f;
  CHECK(color_jitter_apply(im, id).pixels == im.pixels);
}

TEST_CASE("colour ops: grey images, solarize, identity factors, errors") {
  const Image g = noise_image(6, 7, 1, 7), rgb = noise_image(6, 7, 3, 8);
  CHECK(adjust_hue(g, 0.3f).pixels == g.pixels);       // torchvision leaves grey images alone
  CHECK(adjust_saturation(g, 0.3f).pixels == g.pixels);
  CHECK(adjust_brightness(rgb, 1.0f).pixels == rgb.pixels);
  CHECK(adjust_contrast(rgb, 1.0f).pixels == rgb.pixels);
  const Image s = solarize(rgb, 128);
  for (size_t i = 0; i < s.pixels.size(); ++i) CHECK(s.pixels[i] == (rgb.pixels[i] >= 128 ? 255 - rgb.pixels[i] : rgb.pixels[i]));
  CHECK(gaussian_blur(rgb, 0.0f).pixels == rgb.pixels);
  const Image flat(5, 5, 3, 77);
  CHECK(gaussian_blur(flat, 1.7f).pixels == flat.pixels);  // a blur keeps a constant image
  CHECK(error_of([&] { adjust_hue(rgb, 0.6f); }).find("adjust_hue: hue_factor must be in [-0.5, 0.5]") == 0);
  CHECK(error_of([&] { gaussian_blur(rgb, -1.0f); }).find("gaussian_blur: radius must be >= 0") == 0);
  CHECK(error_of([&] { blend(rgb, g, 0.5f); }).find("blend: images differ") == 0);
}

TEST_CASE("normalise to (C, H, W): per channel, non-square, grey") {
  const Image im = noise_image(3, 5, 3, 9);
  const Tensor t = to_tensor_normalized(im, kImagenetMean, kImagenetStd);
  REQUIRE(t.shape() == Shape{3, 3, 5});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x)
        CHECK(t.data<float>()[(c * 3 + y) * 5 + x] == (float(im.at(y, x, c)) / 255.0f - kImagenetMean[c]) / kImagenetStd[c]);
  CHECK(to_tensor_normalized(noise_image(2, 2, 1, 1), {0.5f, 0, 0}, {0.5f, 1, 1}).shape() == Shape{1, 2, 2});
}

TEST_CASE("random erasing: probability, box laws (up to max_count boxes), timm's mode names") {
  Generator g(3);
  RandomDraws rd(g);
  CHECK(random_erasing_boxes(20, 30, rd.generator(), {.probability = 0.0}).empty());
  int erased = 0;
  for (int i = 0; i < 200; ++i) {
    auto boxes = random_erasing_boxes(20, 30, rd.generator(), {.probability = 1.0, .max_count = 3});
    CHECK(boxes.size() <= 3);
    erased += !boxes.empty();
    for (const CropBox& b : boxes) {
      CHECK(b.height < 20);
      CHECK(b.width < 30);
      CHECK(b.top + b.height <= 20);
      CHECK(b.left + b.width <= 30);
    }
  }
  CHECK(erased > 150);
  // The fill is chw::erase_ (tests/unit/test_tensor_transforms.cpp); the names are timm's.
  CHECK(chw::erase_mode_from_name("pixel") == chw::EraseMode::per_pixel);
  CHECK(chw::erase_mode_from_name("rand") == chw::EraseMode::per_channel);
  CHECK(chw::erase_mode_from_name("const") == chw::EraseMode::constant);
  CHECK(error_of([] { chw::erase_mode_from_name("zeros"); }).find("\"const\", \"rand\" or \"pixel\"") != std::string::npos);
}

TEST_CASE("RandAugment: timm's config strings, sampled arguments in range, errors") {
  RandAugment ra = RandAugment::parse("rand-m9-mstd0.5-inc1");
  CHECK(ra.magnitude == 9);
  CHECK(ra.magnitude_std == 0.5);
  CHECK(ra.increasing);
  CHECK(ra.num_layers == 2);
  CHECK(ra.prob == 0.5);
  CHECK(ra.ops.size() == 15);
  RandAugment b = RandAugment::parse("rand-n3-m7-p1.0-mmax15-mstd101");
  CHECK(b.num_layers == 3);
  CHECK(b.magnitude == 7);
  CHECK(b.prob == 1.0);
  CHECK(b.magnitude_max == 15);
  CHECK(std::isinf(b.magnitude_std));
  CHECK(!b.increasing);
  CHECK(error_of([] { RandAugment::parse("augmix-m5"); }).find("must start with \"rand\"") != std::string::npos);
  CHECK(error_of([] { RandAugment::parse("rand-m9-q3"); }).find("unknown section \"q3\"") != std::string::npos);
  CHECK(error_of([] { RandAugment::parse("rand-tweights"); }).find("not supported") != std::string::npos);

  Generator g(4);
  RandomDraws rd(g);
  ra.prob = 1.0;
  std::set<RaOp> seen;
  for (int i = 0; i < 600; ++i) {
    const RandAugmentParams p = ra.params(rd);
    CHECK(p.ops.size() == 2);
    for (const RaOpParams& o : p.ops) {
      seen.insert(o.op);
      switch (o.op) {
        case RaOp::rotate: CHECK(std::fabs(o.arg) <= 30.0); break;
        case RaOp::posterize: CHECK(o.arg >= 0); CHECK(o.arg <= 4); break;
        case RaOp::solarize: CHECK(o.arg >= 0); CHECK(o.arg <= 256); break;
        case RaOp::solarize_add: CHECK(o.arg >= 0); CHECK(o.arg <= 110); break;
        case RaOp::shear_x: case RaOp::shear_y: CHECK(std::fabs(o.arg) <= 0.3); break;
        case RaOp::translate_x_rel: case RaOp::translate_y_rel: CHECK(std::fabs(o.arg) <= 0.45); break;
        case RaOp::color: case RaOp::contrast: case RaOp::brightness: case RaOp::sharpness:
          CHECK(o.arg >= 0.1); CHECK(o.arg <= 1.9); break;
        default: break;
      }
    }
  }
  CHECK(seen.size() == 15);
  ra.prob = 0.0;
  CHECK(ra.params(rd).ops.empty());
  // Applying: RGB only; bits 0 keeps nothing (timm's PosterizeIncreasing at magnitude 10, which
  // Pillow >= 10 refuses: ropevit keeps the older all-black result).
  CHECK(error_of([&] { ra.apply(noise_image(4, 4, 1, 1), {}); }).find("RandAugment: expected an RGB image") == 0);
  const Image p0 = posterize(noise_image(4, 4, 3, 2), 0);
  for (uint8_t v : p0.pixels) CHECK(v == 0);
  const Image im = noise_image(9, 11, 3, 3);
  CHECK(rotate(im, 0.0, Interp::bicubic, {0, 0, 0}).pixels == im.pixels);
  CHECK(rotate(rotate(im, 180.0, Interp::bicubic, {0, 0, 0}), 180.0, Interp::bilinear, {0, 0, 0}).pixels == im.pixels);
}
