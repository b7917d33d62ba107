// test_upernet.cpp: the parts of models/seg and the layers it added, against plain reference loops:
// nn::ConvTranspose2d and nn::Dropout2d, nn::BatchNorm2d (train / eval, running stats), the
// segmentation loss (mmseg's reductions, ignore 255), sliding-window inference (the count matrix,
// with logits that are a known function of position), UperNet's whole / slide / flip inference
// and training step, and gradchecks of the heads and the loss on tiny configs.
// (The whole model against PyTorch: tests/fixtures/test_upernet.cpp.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "models/seg/fcn_head.h"
#include "models/seg/slide_inference.h"
#include "models/seg/upernet.h"
#include "models/seg/vit_seg_backbone.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models;
using namespace rv::models::seg;
using rv::test::grad_input;
using rv::test::test_tensor;

namespace {

ModelConfig tiny_vit(int64_t h = 64, int64_t w = 64) {
  ModelConfig b;
  b.name = "tiny_vit";
  b.arch = "vit";
  b.pos_embed = "rope_mixed";
  b.img_h = h, b.img_w = w;
  b.embed_dim = 16;
  b.depths = {4};
  b.num_heads = {2};
  b.mlp_ratio = 1.0;
  b.num_classes = 0;
  return b;
}

UperNetConfig tiny_upernet() {
  UperNetConfig c;
  c.backbone = tiny_vit();
  c.vit_out_indices = {0, 1, 2, 3};
  c.num_classes = 3;
  c.channels = 8;
  c.aux_channels = 4;
  c.seed = 5;
  return c;
}

}  // namespace

// ---- layers ---------------------------------------------------------------------------------------

TEST_CASE("nn::ConvTranspose2d: rv::conv_transpose2d with PyTorch's init and names") {
  Generator gen(3);
  nn::ConvTranspose2d up(6, 4, {2, 2}, gen, {.stride = {2, 2}});
  CHECK(up.weight.shape() == Shape{6, 4, 2, 2});
  CHECK(up.state_dict().keys() == std::vector<std::string>{"weight", "bias"});
  // PyTorch's fan_in for the (C, O, KH, KW) weight is its dim 1 times the kernel: 4 * 2 * 2.
  const double bound = 1.0 / std::sqrt(16.0);
  for (double v : up.weight.to_double_vector()) CHECK(std::abs(v) <= bound);
  for (double v : up.bias.to_double_vector()) CHECK(std::abs(v) <= bound);
  Tensor x = test_tensor({2, 6, 3, 5}, 1);
  Tensor y = up(x);
  CHECK(y.shape() == Shape{2, 4, 6, 10});
  RV_EXPECT_CLOSE(y, conv_transpose2d(x, up.weight, up.bias, {2, 2}), .rtol = 0, .atol = 0);
  // kernel 2 stride 2: output (o, 2i+a, 2j+b) = bias[o] + sum_c x(c, i, j) w(c, o, a, b)
  auto xv = x.to_double_vector(), wv = up.weight.to_double_vector(), bv = up.bias.to_double_vector();
  auto yv = y.to_double_vector();
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t o = 0; o < 4; ++o)
      for (int64_t Y = 0; Y < 6; ++Y)
        for (int64_t X = 0; X < 10; ++X) {
          double s = bv[size_t(o)];
          for (int64_t c = 0; c < 6; ++c)
            s += xv[size_t(((b * 6 + c) * 3 + Y / 2) * 5 + X / 2)] * wv[size_t(((c * 4 + o) * 2 + Y % 2) * 2 + X % 2)];
          worst = std::max(worst, std::abs(s - yv[size_t(((b * 4 + o) * 6 + Y) * 10 + X)]));
        }
  CHECK(worst < 1e-5);
  CHECK_THROWS_WITH(up(zeros({2, 5, 3, 3})), doctest::Contains("ConvTranspose2d(6, 4"));
  CHECK_THROWS_WITH(nn::ConvTranspose2d(6, 4, {2, 2}, gen, {.stride = {2, 2}, .output_padding = {2, 0}}),
                    doctest::Contains("output_padding"));
}

TEST_CASE("nn::Dropout2d zeroes whole channels, scales the rest, and backpropagates the mask") {
  Tensor x = test_tensor({3, 40, 2, 3}, 2).requires_grad_();
  nn::Dropout2d drop(0.25, std::make_shared<Generator>(9));
  Tensor y = drop(x);
  auto xv = x.to_double_vector(), yv = y.to_double_vector();
  int64_t dropped = 0;
  for (int64_t bc = 0; bc < 3 * 40; ++bc) {
    const double scale = yv[size_t(bc * 6)] == 0.0 ? 0.0 : 1.0 / 0.75;
    dropped += scale == 0.0;
    for (int64_t k = 0; k < 6; ++k) CHECK(yv[size_t(bc * 6 + k)] == doctest::Approx(xv[size_t(bc * 6 + k)] * scale));
  }
  CHECK(dropped > 10);  // about 30 of 120
  CHECK(dropped < 55);
  sum(y).backward();
  auto gv = x.grad().to_double_vector();
  for (size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == doctest::Approx(yv[i] == 0.0 && xv[i] != 0.0 ? 0.0 : 1.0 / 0.75));
  drop.eval();
  CHECK(drop(x).same(x));
  CHECK_THROWS_WITH(nn::Dropout2d(0.5)(zeros({2, 3, 4})), doctest::Contains("Dropout2d"));
  CHECK_THROWS_WITH(nn::Dropout2d(1.5), doctest::Contains("Dropout2d"));
}

TEST_CASE("nn::BatchNorm2d: batch statistics and momentum-0.1 running stats in training, running stats in eval") {
  nn::BatchNorm2d bn(3);
  {
    autograd::NoGradGuard g;
    bn.weight.copy_(test_tensor({3}, 4, DType::f32, 0.5, 1.5));
    bn.bias.copy_(test_tensor({3}, 5));
  }
  const int64_t B = 2, C = 3, HW = 5 * 3;
  std::vector<double> rm(3, 0.0), rv(3, 1.0);
  for (uint64_t step = 0; step < 2; ++step) {
    Tensor x = test_tensor({B, C, 5, 3}, 10 + step, DType::f32, -2.0, 3.0);
    Tensor y = bn(x);
    auto xv = x.to_double_vector(), yv = y.to_double_vector();
    auto w = bn.weight.to_double_vector(), b = bn.bias.to_double_vector();
    for (int64_t c = 0; c < C; ++c) {
      double m = 0, v = 0;
      for (int64_t n = 0; n < B; ++n)
        for (int64_t k = 0; k < HW; ++k) m += xv[size_t((n * C + c) * HW + k)];
      m /= double(B * HW);
      for (int64_t n = 0; n < B; ++n)
        for (int64_t k = 0; k < HW; ++k) v += std::pow(xv[size_t((n * C + c) * HW + k)] - m, 2);
      v /= double(B * HW);
      for (int64_t n = 0; n < B; ++n)
        for (int64_t k = 0; k < HW; ++k) {
          const size_t i = size_t((n * C + c) * HW + k);
          CHECK(yv[i] == doctest::Approx((xv[i] - m) / std::sqrt(v + 1e-5) * w[size_t(c)] + b[size_t(c)]).epsilon(1e-5));
        }
      rm[size_t(c)] = 0.9 * rm[size_t(c)] + 0.1 * m;
      rv[size_t(c)] = 0.9 * rv[size_t(c)] + 0.1 * v * double(B * HW) / double(B * HW - 1);  // unbiased
    }
  }
  auto brm = bn.running_mean.to_double_vector(), brv = bn.running_var.to_double_vector();
  for (size_t c = 0; c < 3; ++c) {
    CHECK(brm[c] == doctest::Approx(rm[c]).epsilon(1e-6));
    CHECK(brv[c] == doctest::Approx(rv[c]).epsilon(1e-6));
  }
  CHECK(bn.num_batches_tracked.item() == 2);
  bn.eval();
  Tensor x = test_tensor({1, 3, 2, 2}, 20);
  auto xv = x.to_double_vector(), yv = bn(x).to_double_vector();
  auto w = bn.weight.to_double_vector(), b = bn.bias.to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = i / 4;
    CHECK(yv[i] == doctest::Approx((xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-5) * w[c] + b[c]).epsilon(1e-5));
  }
  CHECK(bn.num_batches_tracked.item() == 2);  // eval does not count
}

// ---- loss -----------------------------------------------------------------------------------------

TEST_CASE("seg_cross_entropy: per-pixel CE, ignore 255, mmseg's average over all pixels or over valid ones") {
  const int64_t B = 2, K = 4, H = 3, W = 5;
  Tensor logits = test_tensor({B, K, H, W}, 30, DType::f32, -2, 2);
  Tensor labels = zeros({B, H, W}, DType::u8);
  uint8_t* lp = labels.data<uint8_t>();
  for (int64_t i = 0; i < B * H * W; ++i) lp[i] = uint8_t(i % 7 == 3 ? 255 : (i * 5) % K);
  auto xv = logits.to_double_vector();
  double total = 0;
  int64_t valid = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < H * W; ++p) {
      const int64_t y = lp[b * H * W + p];
      if (y == 255) continue;
      double mx = -1e30, se = 0;
      for (int64_t k = 0; k < K; ++k) mx = std::max(mx, xv[size_t((b * K + k) * H * W + p)]);
      for (int64_t k = 0; k < K; ++k) se += std::exp(xv[size_t((b * K + k) * H * W + p)] - mx);
      total += std::log(se) + mx - xv[size_t((b * K + y) * H * W + p)];
      ++valid;
    }
  CHECK(seg_cross_entropy(logits, labels).item() == doctest::Approx(total / double(B * H * W)).epsilon(1e-6));
  CHECK(seg_cross_entropy(logits, labels, {.avg_non_ignore = true}).item() ==
        doctest::Approx(total / (double(valid) + 1.1920928955078125e-07)).epsilon(1e-6));
  CHECK(seg_cross_entropy(logits, labels, {.loss_weight = 0.4}).item() ==
        doctest::Approx(0.4 * total / double(B * H * W)).epsilon(1e-6));
  // Non-contiguous logits and i64 labels give the same value.
  Tensor nc = logits.transpose(2, 3).contiguous().transpose(2, 3);
  CHECK(seg_cross_entropy(nc, labels.to(DType::i64)).item() == doctest::Approx(total / double(B * H * W)).epsilon(1e-6));
  // Everything ignored: 0, not NaN, in both modes.
  Tensor ign = full({B, H, W}, 255, DType::u8);
  CHECK(seg_cross_entropy(logits, ign).item() == 0.0);
  CHECK(seg_cross_entropy(logits, ign, {.avg_non_ignore = true}).item() == 0.0);
  // Labels larger than the logits: the logits are resized bilinear to them first (mmseg).
  Tensor big = zeros({B, 2 * H, 2 * W}, DType::u8);
  CHECK(std::isfinite(seg_cross_entropy(logits, big).item()));
  CHECK_THROWS_WITH(seg_cross_entropy(logits, labels.to(DType::f32)), doctest::Contains("integer labels"));
  CHECK_THROWS_WITH(seg_cross_entropy(logits.select(0, 0), labels), doctest::Contains("seg_cross_entropy"));
}

TEST_CASE("gradcheck seg_cross_entropy (with the bilinear resize to the labels)") {
  Tensor labels = zeros({2, 6, 4}, DType::i64);
  int64_t* lp = labels.data<int64_t>();
  for (int64_t i = 0; i < 48; ++i) lp[i] = i % 5 == 0 ? 255 : i % 3;
  for (bool non_ignore : {false, true}) {
    auto f = [&](const std::vector<Tensor>& in) { return seg_cross_entropy(in[0], labels, {.avg_non_ignore = non_ignore}); };
    const std::vector<Tensor> in = {grad_input({2, 3, 3, 2}, 40)};
    RV_GRADCHECK(f, in);
  }
}

// ---- sliding window -------------------------------------------------------------------------------

// mmseg's window list, written out independently of slide_inference.
struct Win {
  int64_t y1, y2, x1, x2;
};
std::vector<Win> mmseg_windows(int64_t H, int64_t W, int64_t ch, int64_t cw, int64_t sh, int64_t sw) {
  std::vector<Win> out;
  const int64_t hg = std::max<int64_t>(H - ch + sh - 1, 0) / sh + 1, wg = std::max<int64_t>(W - cw + sw - 1, 0) / sw + 1;
  for (int64_t r = 0; r < hg; ++r)
    for (int64_t c = 0; c < wg; ++c) {
      int64_t y1 = r * sh, x1 = c * sw;
      const int64_t y2 = std::min(y1 + ch, H), x2 = std::min(x1 + cw, W);
      y1 = std::max<int64_t>(y2 - ch, 0), x1 = std::max<int64_t>(x2 - cw, 0);
      out.push_back({y1, y2, x1, x2});
    }
  return out;
}

TEST_CASE("slide_inference averages each pixel over the windows that cover it (mmseg's count matrix)") {
  // Channel 0 of the image holds the absolute row, channel 1 the column. The "model" returns, per
  // pixel, (row + 100 * local row within the window, column * local column): position-dependent,
  // so the mean differs from any single window, and every window has a different value.
  const int64_t B = 2, H = 23, W = 17;
  Tensor img = zeros({B, 2, H, W});
  float* ip = img.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        ip[((b * 2 + 0) * H + y) * W + x] = float(y);
        ip[((b * 2 + 1) * H + y) * W + x] = float(x);
      }
  auto fn = [](const Tensor& crop) {
    const int64_t h = crop.size(2), w = crop.size(3);
    Tensor c = crop.contiguous();
    Tensor out = empty({crop.size(0), 2, h, w});
    const float* cp = c.data<float>();
    float* op = out.data<float>();
    for (int64_t b = 0; b < crop.size(0); ++b)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          op[((b * 2 + 0) * h + y) * w + x] = cp[((b * 2 + 0) * h + y) * w + x] + 100.f * float(y);
          op[((b * 2 + 1) * h + y) * w + x] = cp[((b * 2 + 1) * h + y) * w + x] * float(x);
        }
    return out;
  };
  for (auto [ch, cw, sh, sw] : std::vector<std::array<int64_t, 4>>{{8, 6, 5, 4}, {10, 10, 7, 7}, {23, 5, 1, 3}, {30, 40, 5, 5}}) {
    CAPTURE(ch);
    CAPTURE(cw);
    Tensor got = slide_inference(img, fn, {ch, cw}, {sh, sw});
    std::vector<double> sum0(size_t(H * W), 0), sum1(size_t(H * W), 0), cnt(size_t(H * W), 0);
    for (const Win& w : mmseg_windows(H, W, ch, cw, sh, sw))
      for (int64_t y = w.y1; y < w.y2; ++y)
        for (int64_t x = w.x1; x < w.x2; ++x) {
          sum0[size_t(y * W + x)] += double(y) + 100.0 * double(y - w.y1);
          sum1[size_t(y * W + x)] += double(x) * double(x - w.x1);
          cnt[size_t(y * W + x)] += 1;
        }
    auto gv = got.to_double_vector();
    double worst = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p = 0; p < H * W; ++p) {
        REQUIRE(cnt[size_t(p)] >= 1);
        worst = std::max(worst, std::abs(gv[size_t((b * 2 + 0) * H * W + p)] - sum0[size_t(p)] / cnt[size_t(p)]));
        worst = std::max(worst, std::abs(gv[size_t((b * 2 + 1) * H * W + p)] - sum1[size_t(p)] / cnt[size_t(p)]));
      }
    CHECK(worst < 1e-4);
  }
  // A window covering the image: exactly one call on the whole image.
  RV_EXPECT_CLOSE(slide_inference(img, fn, {64, 64}, {10, 10}), fn(img), .rtol = 0, .atol = 0);
  CHECK_THROWS_WITH(slide_inference(img, fn, {0, 4}, {1, 1}), doctest::Contains("slide_inference"));
  CHECK_THROWS_WITH(slide_inference(img, [](const Tensor& c) { return c.slice(2, 1, c.size(2)); }, {8, 8}, {4, 4}),
                    doctest::Contains("window's size"));
}

// ---- UperNet --------------------------------------------------------------------------------------

TEST_CASE("UperNet: shapes, mmseg's names, whole = slide when the window covers the image, flip") {
  UperNet net(tiny_upernet());
  net.eval();
  const auto keys = net.state_dict().keys();
  auto has = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };
  CHECK(has("backbone.blocks.3.attn.qkv.weight"));
  CHECK(has("backbone.rope.freqs"));
  CHECK(has("backbone.fpn1.1.running_var"));
  CHECK(has("decode_head.psp_modules.0.1.conv.weight"));
  CHECK(has("decode_head.lateral_convs.0.conv.weight"));
  CHECK(has("decode_head.fpn_bottleneck.bn.num_batches_tracked"));
  CHECK(has("auxiliary_head.convs.0.conv.weight"));
  CHECK_FALSE(has("backbone.norm.weight"));  // the ViT's final norm is not used for segmentation
  CHECK_FALSE(has("backbone.head.weight"));
  CHECK_FALSE(has("decode_head.conv_seg.conv.weight"));

  Tensor x = test_tensor({1, 3, 64, 96}, 50);
  Tensor dec = net.forward(x);
  CHECK(dec.shape() == Shape{1, 3, 16, 24});
  Tensor whole = net.predict(x);
  CHECK(whole.shape() == Shape{1, 3, 64, 96});
  RV_EXPECT_CLOSE(net.predict(x, {.mode = "slide", .crop = {64, 96}, .stride = {32, 32}}), whole, .rtol = 0, .atol = 0);
  // Windows smaller than the image (64x64 every 32 columns: two windows overlapping in 32 columns).
  Tensor slid = net.predict(x, {.mode = "slide", .crop = {64, 64}, .stride = {64, 32}});
  Tensor left = net.encode_decode(x.slice(3, 0, 64)), right = net.encode_decode(x.slice(3, 32, 96));
  RV_EXPECT_CLOSE(slid.slice(3, 0, 32), left.slice(3, 0, 32), .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(slid.slice(3, 32, 64), mul(add(left.slice(3, 32, 64), right.slice(3, 0, 32)), 0.5), .rtol = 1e-6, .atol = 1e-6);
  RV_EXPECT_CLOSE(slid.slice(3, 64, 96), right.slice(3, 32, 64), .rtol = 0, .atol = 0);
  // Resized to the label size; flip averages two softmax maps, so the classes sum to 1.
  Tensor out = net.predict(x, {.flip = true, .out_size = {50, 75}});
  CHECK(out.shape() == Shape{1, 3, 50, 75});
  RV_EXPECT_CLOSE(sum(out, {1}), ones({1, 50, 75}), .rtol = 1e-5, .atol = 1e-5);
  CHECK(net.predict_labels(x).shape() == Shape{1, 64, 96});
  // Multi-scale: one scale without flip is the softmax of predict; with flip, predict's flip mean;
  // two scales: the mean of the two, each resized to out_size first.
  RV_EXPECT_CLOSE(net.predict_multi_scale({x}), softmax(whole, 1), .rtol = 1e-6, .atol = 1e-7);
  RV_EXPECT_CLOSE(net.predict_multi_scale({x}, {.flip = true, .out_size = {50, 75}}), out, .rtol = 1e-6, .atol = 1e-7);
  Tensor x2 = test_tensor({1, 3, 32, 64}, 52);
  Tensor ms = net.predict_multi_scale({x, x2}, {.out_size = {40, 60}});
  Tensor a = softmax(net.predict(x, {.out_size = {40, 60}}), 1), b = softmax(net.predict(x2, {.out_size = {40, 60}}), 1);
  RV_EXPECT_CLOSE(ms, mul(add(a, b), 0.5), .rtol = 1e-6, .atol = 1e-7);
  // Sizes that are not multiples of 32 are padded for the backbone and cropped back.
  CHECK(net.encode_decode(test_tensor({1, 3, 50, 70}, 51)).shape() == Shape{1, 3, 50, 70});
  CHECK_THROWS_WITH(net.predict(x, {.mode = "tiles"}), doctest::Contains("'whole' or 'slide'"));
}

TEST_CASE("UperNet builds and runs on every position embedding of both backbones, at a size not the config's") {
  for (const std::string pe : {"ape", "rope_axial", "rope_mixed", "rope_axial_ape", "rope_mixed_ape"}) {
    CAPTURE(pe);
    UperNetConfig c = tiny_upernet();
    c.backbone.pos_embed = pe;
    UperNet net(c);
    net.eval();
    Tensor y = net.forward(test_tensor({1, 3, 96, 64}, 80));  // APE resampled, RoPE on the 6x4 grid
    CHECK(y.shape() == Shape{1, 3, 24, 16});
    const auto keys = net.state_dict().keys();
    CHECK((std::find(keys.begin(), keys.end(), "backbone.pos_embed") != keys.end()) == (pe == "ape" || pe.ends_with("_ape")));
  }
  for (const std::string pe : {"rpb", "rope_axial", "rope_mixed"}) {
    CAPTURE(pe);
    UperNetConfig c = tiny_upernet();
    c.backbone.arch = "swin";
    c.backbone.pos_embed = pe;
    c.backbone.patch_size = 4;
    c.backbone.embed_dim = 8;
    c.backbone.depths = {2, 2, 2, 2};
    c.backbone.num_heads = {1, 1, 2, 2};
    c.backbone.window_size = 4;
    c.backbone.norm_eps = 1e-5;
    c.backbone.img_h = 96, c.backbone.img_w = 64;  // a Swin is built for its input size
    UperNet net(c);
    net.eval();
    CHECK(net.forward(test_tensor({1, 3, 96, 64}, 81)).shape() == Shape{1, 3, 24, 16});
    CHECK(net.parameter("backbone.norm3.weight").shape() == Shape{64});
    CHECK(net.backbone->out_channels() == std::vector<int64_t>{8, 16, 32, 64});
  }
}

TEST_CASE("UperNet training step: both losses, dropout from the model's generator, gradients everywhere") {
  UperNet net(tiny_upernet());
  net.train();
  Tensor x = test_tensor({2, 3, 64, 64}, 60);
  Tensor labels = zeros({2, 64, 64}, DType::u8);
  uint8_t* lp = labels.data<uint8_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) lp[i] = uint8_t(i % 11 == 0 ? 255 : (i / 64) % 3);
  SegLosses l = net.loss(x, labels);
  CHECK(std::isfinite(l.total.item()));
  CHECK(l.total.item() == doctest::Approx(l.decode.item() + l.aux.item()));
  l.total.backward();
  for (const auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    CHECK(p.grad().defined());
  }
  // Without the auxiliary head there is none in the state dict and no aux loss.
  UperNetConfig c = tiny_upernet();
  c.aux_loss_weight = 0.0;
  UperNet plain(c);
  CHECK(plain.auxiliary_head == nullptr);
  for (const auto& k : plain.state_dict().keys()) CHECK(k.rfind("auxiliary_head", 0) != 0);
  CHECK_FALSE(plain.loss(x, labels).aux.defined());
}

TEST_CASE("UperNet configuration errors name the argument") {
  UperNetConfig c = tiny_upernet();
  c.vit_out_indices = {0, 1, 2};
  CHECK_THROWS_WITH(UperNet{c}, doctest::Contains("4 out_indices"));
  c.vit_out_indices = {0, 2, 1, 3};
  CHECK_THROWS_WITH(UperNet{c}, doctest::Contains("increasing out_indices"));
  c = tiny_upernet();
  c.backbone.arch = "resnet";
  CHECK_THROWS_WITH(UperNet{c}, doctest::Contains("'vit' or 'swin'"));
  c = tiny_upernet();
  c.vit_out_indices = {};
  c.backbone.depths = {6};
  CHECK_THROWS_WITH(UperNet{c}, doctest::Contains("divisible by 4"));
  CHECK(default_vit_out_indices(12) == std::vector<int64_t>{2, 5, 8, 11});
  CHECK(default_vit_out_indices(24) == std::vector<int64_t>{5, 11, 17, 23});
}

TEST_CASE("upernet_ade20k_config: mmseg's ADE20k recipe on registered backbones") {
  UperNetConfig v = upernet_ade20k_config("vit_base_patch16_rope_mixed_224");
  CHECK(v.backbone.img_h == 512);
  CHECK(v.backbone.img_w == 512);
  CHECK(v.vit_out_indices == std::vector<int64_t>{2, 5, 8, 11});
  CHECK(v.num_classes == 150);
  CHECK(v.channels == 512);
  CHECK(v.aux_channels == 256);
  CHECK(v.aux_loss_weight == 0.4);
  CHECK(v.dropout_ratio == 0.1);
  CHECK_FALSE(v.avg_non_ignore);
  UperNetConfig s = upernet_ade20k_config("swin_tiny_patch4_window7_rope_mixed_224");
  CHECK(s.backbone.window_size == 7);  // not 512 // 32 = 16
  CHECK(s.backbone.img_h == 512);
  CHECK(upernet_ade20k_config("vit_large_patch16_rope_224").vit_out_indices == std::vector<int64_t>{5, 11, 17, 23});
  // The tiny ViT builds (no init draws) with a UperNet of mmseg's widths.
  nn::init::SkipInitGuard skip;
  UperNet net(upernet_ade20k_config("vit_tiny_patch16_rope_mixed_224"));
  CHECK(net.decode_head->num_classes() == 150);
  CHECK(net.parameter("decode_head.fpn_bottleneck.conv.weight").shape() == Shape{512, 2048, 3, 3});
  CHECK(net.parameter("auxiliary_head.convs.0.conv.weight").shape() == Shape{256, 192, 3, 3});
}

// ---- gradchecks -----------------------------------------------------------------------------------

TEST_CASE("gradcheck UperHead and FCNHead (f64, BatchNorm on batch statistics) in every level") {
  Generator gen(70);
  UperHead head({.in_channels = {3, 4, 2, 5}, .channels = 3, .num_classes = 2, .pool_scales = {1, 2, 3}}, gen);
  head.to(DType::f64);
  head.train();
  head.dropout->eval();
  // Levels at strides 4..32 of an 24x16 image, so the PPM's 3x3 pooling covers an odd split.
  std::vector<Tensor> levels = {grad_input({2, 3, 6, 4}, 71), grad_input({2, 4, 3, 2}, 72), grad_input({2, 2, 2, 1}, 73),
                                grad_input({2, 5, 1, 1}, 74)};
  auto f = [&](const std::vector<Tensor>& in) { return head.forward(in); };
  RV_GRADCHECK(f, levels, .rtol = 1e-4, .atol = 1e-6);
  FcnHead aux({.in_channels = 2, .in_index = 2, .channels = 3, .num_classes = 2}, gen);
  aux.to(DType::f64);
  aux.train();
  aux.dropout->eval();
  // The FCN head reads level 2 only: the others are constants here.
  auto g = [&](const std::vector<Tensor>& in) { return aux.forward({levels[0].detach(), levels[1].detach(), in[0], levels[3].detach()}); };
  const std::vector<Tensor> level2 = {levels[2]};
  RV_GRADCHECK(g, level2, .rtol = 1e-4, .atol = 1e-6);
}
