// conv2d and conv_transpose2d against direct loops written from the definitions (odd sizes;
// stride, padding, dilation, groups, depthwise, 1x1, the patch-embedding fast path, output
// padding), gradients against the adjoint identity, two cases pasted from PyTorch, dtypes,
// non-contiguous inputs and the error messages.
#include <array>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;
using test::test_tensor;

namespace {

struct Cfg {
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  Pair output_padding{0, 0};
};

// y[b, o, oh, ow] = bias[o] + sum_{c in o's group, i, j} x[b, c, oh*s - p + i*d, ow*s - p + j*d] * w[o, c', i, j]
Tensor ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Cfg c) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), CG = w.size(1), KH = w.size(2), KW = w.size(3), OG = O / c.groups;
  const int64_t Ho = (H + 2 * c.padding[0] - c.dilation[0] * (KH - 1) - 1) / c.stride[0] + 1;
  const int64_t Wo = (W + 2 * c.padding[1] - c.dilation[1] * (KW - 1) - 1) / c.stride[1] + 1;
  auto xv = x.to_double_vector(), wv = w.to_double_vector();
  std::vector<double> bv = bias.defined() ? bias.to_double_vector() : std::vector<double>(O, 0.0);
  std::vector<double> y(B * O * Ho * Wo);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv[o];
          for (int64_t cc = 0; cc < CG; ++cc)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * c.stride[0] - c.padding[0] + i * c.dilation[0];
                const int64_t iw = ow * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = (o / OG) * CG + cc;
                acc += xv[((b * C + ci) * H + ih) * W + iw] * wv[((o * CG + cc) * KH + i) * KW + j];
              }
          y[((b * O + o) * Ho + oh) * Wo + ow] = acc;
        }
  return from_vector(y, {B, O, Ho, Wo}, DType::f64);
}

// Scatter form: every x[b, c, h, w] adds x * w[c, o', i, j] at (h*s - p + i*d, w*s - p + j*d).
Tensor ref_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, Cfg c) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OG = w.size(1), KH = w.size(2), KW = w.size(3), O = OG * c.groups, CG = C / c.groups;
  const int64_t Ho = (H - 1) * c.stride[0] - 2 * c.padding[0] + c.dilation[0] * (KH - 1) + c.output_padding[0] + 1;
  const int64_t Wo = (W - 1) * c.stride[1] - 2 * c.padding[1] + c.dilation[1] * (KW - 1) + c.output_padding[1] + 1;
  auto xv = x.to_double_vector(), wv = w.to_double_vector();
  std::vector<double> y(B * O * Ho * Wo, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ci = 0; ci < C; ++ci)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t ww = 0; ww < W; ++ww)
          for (int64_t oo = 0; oo < OG; ++oo)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t oh = h * c.stride[0] - c.padding[0] + i * c.dilation[0];
                const int64_t ow = ww * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                const int64_t o = (ci / CG) * OG + oo;
                y[((b * O + o) * Ho + oh) * Wo + ow] +=
                    xv[((b * C + ci) * H + h) * W + ww] * wv[((ci * OG + oo) * KH + i) * KW + j];
              }
  if (bias.defined()) {
    auto bv = bias.to_double_vector();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t p = 0; p < Ho * Wo; ++p) y[(b * O + o) * Ho * Wo + p] += bv[o];
  }
  return from_vector(y, {B, O, Ho, Wo}, DType::f64);
}

void check_conv2d(const Shape& xs, const Shape& ws, Cfg c, bool with_bias = true) {
  Tensor x = test_tensor(xs, 1), w = test_tensor(ws, 2), b = with_bias ? test_tensor({ws[0]}, 3) : Tensor();
  INFO("x ", shape_str(xs), " w ", shape_str(ws), " stride ", c.stride[0], ",", c.stride[1], " pad ", c.padding[0],
       ",", c.padding[1], " dil ", c.dilation[0], ",", c.dilation[1], " groups ", c.groups);
  RV_EXPECT_CLOSE(conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups), ref_conv2d(x, w, b, c), .rtol = 1e-5,
                  .atol = 1e-5);
}

void check_conv_transpose2d(const Shape& xs, const Shape& ws, Cfg c, bool with_bias = true) {
  Tensor x = test_tensor(xs, 4), w = test_tensor(ws, 5), b = with_bias ? test_tensor({ws[1] * c.groups}, 6) : Tensor();
  INFO("x ", shape_str(xs), " w ", shape_str(ws), " stride ", c.stride[0], ",", c.stride[1], " pad ", c.padding[0],
       ",", c.padding[1], " out_pad ", c.output_padding[0], ",", c.output_padding[1], " dil ", c.dilation[0], ",",
       c.dilation[1], " groups ", c.groups);
  RV_EXPECT_CLOSE(conv_transpose2d(x, w, b, c.stride, c.padding, c.output_padding, c.dilation, c.groups),
                  ref_conv_transpose2d(x, w, b, c), .rtol = 1e-5, .atol = 1e-5);
}

}  // namespace

TEST_CASE("conv2d matches the direct loop") {
  check_conv2d({2, 3, 7, 9}, {5, 3, 3, 3}, {});                               // plain 3x3
  check_conv2d({2, 3, 7, 9}, {5, 3, 3, 3}, {.stride = {2, 2}}, false);        // stride 2, no bias
  check_conv2d({2, 3, 7, 9}, {5, 3, 3, 3}, {.padding = {1, 1}});              // padding 1
  check_conv2d({2, 3, 9, 8}, {4, 3, 3, 2}, {.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 2}});
  check_conv2d({3, 4, 7, 6}, {6, 2, 3, 3}, {.padding = {1, 1}, .groups = 2});  // groups 2
  check_conv2d({2, 5, 7, 7}, {5, 1, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 5});   // depthwise
  check_conv2d({2, 4, 5, 7}, {8, 1, 3, 3}, {.padding = {1, 1}, .groups = 4});  // depthwise, multiplier 2
  check_conv2d({2, 3, 5, 7}, {4, 3, 1, 1}, {});                               // 1x1: no im2col
  check_conv2d({2, 3, 5, 7}, {4, 3, 1, 1}, {.stride = {2, 2}});               // 1x1 strided
  check_conv2d({1, 1, 1, 1}, {1, 1, 1, 1}, {});
  check_conv2d({1, 2, 3, 3}, {3, 2, 3, 3}, {});                               // one output pixel
  check_conv2d({5, 2, 6, 6}, {3, 2, 3, 3}, {.padding = {2, 0}});              // batch > threads: per image
}

TEST_CASE("conv2d: the patch-embedding fast path (kernel == stride)") {
  check_conv2d({2, 3, 8, 12}, {5, 3, 4, 4}, {.stride = {4, 4}});
  check_conv2d({2, 3, 9, 14}, {5, 3, 4, 4}, {.stride = {4, 4}});   // sizes not divisible: border dropped
  check_conv2d({1, 2, 6, 6}, {3, 2, 2, 3}, {.stride = {2, 3}}, false);
  // Its output is a (B, O, Ho, Wo) view of a channels-last buffer: tokens are a free view
  Tensor y = conv2d(test_tensor({2, 3, 8, 8}, 1), test_tensor({6, 3, 4, 4}, 2), Tensor(), {4, 4});
  CHECK(y.shape() == Shape{2, 6, 2, 2});
  CHECK(y.flatten(2).transpose(1, 2).is_contiguous());
}

// Gradients of the patch path straight from the definition (kernel == stride, no padding):
// y[b, o, oh, ow] = bias[o] + sum_{c, i, j} x[b, c, oh*KH + i, ow*KW + j] * w[o, c, i, j].
struct PatchGrads {
  std::vector<double> dx, dw, db;
};
PatchGrads ref_patch_grads(const Tensor& x, const Tensor& w, const Tensor& gy) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), KH = w.size(2), KW = w.size(3), Ho = H / KH, Wo = W / KW;
  auto xv = x.to_double_vector(), wv = w.to_double_vector(), gv = gy.to_double_vector();
  PatchGrads r{std::vector<double>(xv.size(), 0.0), std::vector<double>(wv.size(), 0.0), std::vector<double>(O, 0.0)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const double gv1 = gv[((b * O + o) * Ho + oh) * Wo + ow];
          r.db[o] += gv1;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t xi = ((b * C + c) * H + oh * KH + i) * W + ow * KW + j, wi = ((o * C + c) * KH + i) * KW + j;
                r.dw[wi] += gv1 * xv[xi];
                r.dx[xi] += gv1 * wv[wi];
              }
        }
  return r;
}

TEST_CASE("conv2d patch path: ViT-sized patches, gradients given channels-last or not") {
  // 40 images of 3x48x40 with 16x16 patches (768 values each, runs of 16 pixels); W = 40 leaves
  // 8 columns no patch covers (their dx is 0). The gradient comes either channels-last, as the
  // tokens' (B, N, C) layout gives it (read in place), or NCHW (transposed into rows first).
  const Shape xs{40, 3, 48, 40}, ws{3, 3, 16, 16};
  Tensor x0 = test_tensor(xs, 21), w0 = test_tensor(ws, 22), b0 = test_tensor({3}, 23);
  Tensor y = conv2d(x0, w0, b0, {16, 16});
  // (sums of 768 products of values in [-1, 1]: f32 rounding reaches ~1e-5 absolute)
  RV_EXPECT_CLOSE(y, ref_conv2d(x0, w0, b0, {.stride = {16, 16}}), .rtol = 1e-5, .atol = 1e-4);
  Tensor gy = test_tensor(y.shape(), 24);
  const PatchGrads ref = ref_patch_grads(x0, w0, gy);
  for (bool channels_last : {false, true}) {
    CAPTURE(channels_last);
    Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    Tensor out = conv2d(x, w, b, {16, 16});
    // channels-last: the gradient as the tokens' (B, N, C) layout gives it; else plain NCHW.
    Tensor g = channels_last ? gy.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}) : gy;
    CHECK(g.permute({0, 2, 3, 1}).is_contiguous() == channels_last);
    out.backward(g);
    RV_EXPECT_CLOSE(x.grad(), from_vector(ref.dx, xs, DType::f64), .rtol = 1e-5, .atol = 1e-5);
    RV_EXPECT_CLOSE(w.grad(), from_vector(ref.dw, ws, DType::f64), .rtol = 1e-5, .atol = 1e-3);
    RV_EXPECT_CLOSE(b.grad(), from_vector(ref.db, {3}, DType::f64), .rtol = 1e-5, .atol = 1e-4);
  }
#ifdef _OPENMP
  // The same bits with 1, 2 and 3 threads for y and db. (dW is one OpenBLAS product, and
  // OpenBLAS itself may split a product with only O = 3 rows differently per thread count,
  // so dW's bits are not checked here.)
  auto run = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor b = b0.detach().requires_grad_();
    Tensor out = conv2d(x0, w0, b, {16, 16});
    out.backward(gy);
    omp_set_num_threads(prev);
    return std::vector<std::vector<float>>{out.contiguous().to_vector<float>(), b.grad().to_vector<float>()};
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
#endif
}

TEST_CASE("conv2d patch path: the direct kernel (O in whole vectors)") {
  // O a multiple of the SIMD width takes the direct kernel (cpu/patch_embed_kernel.h): strips of
  // 1-4 vectors of channels, blocks of 96 pixels with a rest, K chunks of whole image rows.
  // O = 16, 32, 48, 80, 96 (Swin), 112, 144 give strips 1, 2, 3, 3+2, 3+3, 4+3, 3+3+3 vectors
  // of 16 floats; Wo = 11, 9, 13 leave rests of every micro-kernel height.
  check_conv2d({2, 3, 8, 44}, {32, 3, 4, 4}, {.stride = {4, 4}});           // Wo 11
  check_conv2d({2, 3, 9, 38}, {96, 3, 4, 4}, {.stride = {4, 4}});           // Wo 9, border dropped
  check_conv2d({1, 3, 4, 52}, {48, 3, 4, 4}, {.stride = {4, 4}}, false);    // Wo 13, no bias
  for (int64_t O : {16, 80, 112, 144}) check_conv2d({2, 2, 6, 27}, {O, 2, 3, 2}, {.stride = {3, 2}});
  check_conv2d({1, 1, 2, 30}, {16, 1, 2, 1}, {.stride = {2, 1}});            // runs of one pixel
  check_conv2d({2, 3, 36, 101}, {48, 3, 4, 4}, {.stride = {4, 4}});          // 450 pixels: 4 blocks + 66
  // long patches: K in chunks of whole image rows (16 taps: 8 rows of 128; 5 taps: 25 + 11 rows)
  Tensor xl = test_tensor({3, 3, 48, 90}, 20), wl = test_tensor({32, 3, 16, 16}, 21), bl = test_tensor({32}, 22);
  RV_EXPECT_CLOSE(conv2d(xl, wl, bl, {16, 16}), ref_conv2d(xl, wl, bl, {.stride = {16, 16}}), .rtol = 1e-5,
                  .atol = 1e-4);
  check_conv2d({2, 3, 25, 21}, {32, 3, 12, 5}, {.stride = {12, 5}});
  // non-contiguous input, f64 (8 lanes), and an empty batch
  Tensor xn = test::test_noncontiguous({2, 3, 8, 20}, 11);
  Tensor w = test_tensor({32, 3, 4, 4}, 12), b = test_tensor({32}, 13);
  RV_EXPECT_CLOSE(conv2d(xn, w, b, {4, 4}), ref_conv2d(xn, w, b, {.stride = {4, 4}}), .rtol = 1e-5, .atol = 1e-5);
  Tensor xd = test_tensor({2, 3, 8, 20}, 14, DType::f64), wd = test_tensor({24, 3, 4, 4}, 15, DType::f64);
  RV_EXPECT_CLOSE(conv2d(xd, wd, Tensor(), {4, 4}), ref_conv2d(xd, wd, Tensor(), {.stride = {4, 4}}), .rtol = 1e-12,
                  .atol = 1e-12);
  CHECK(conv2d(zeros({0, 3, 8, 8}), w, b, {4, 4}).shape() == Shape{0, 32, 2, 2});

  // The same bits whether the forward keeps the patch matrix for dW (w requires grad) or not,
  // and with 1, 2 or 3 threads; gradients match the definition.
  const Shape xs{3, 3, 12, 28}, ws{32, 3, 4, 4};
  Tensor x0 = test_tensor(xs, 16), w0 = test_tensor(ws, 17), b0 = test_tensor({32}, 18);
  Tensor y0 = conv2d(x0, w0, b0, {4, 4});
  Tensor wg = w0.detach().requires_grad_(), bg = b0.detach().requires_grad_();
  Tensor y1 = conv2d(x0, wg, bg, {4, 4});
  CHECK(y1.contiguous().to_vector<float>() == y0.contiguous().to_vector<float>());
  Tensor gy = test_tensor(y0.shape(), 19);
  y1.backward(gy);
  const PatchGrads ref = ref_patch_grads(x0, w0, gy);
  RV_EXPECT_CLOSE(wg.grad(), from_vector(ref.dw, ws, DType::f64), .rtol = 1e-5, .atol = 1e-4);
  RV_EXPECT_CLOSE(bg.grad(), from_vector(ref.db, {32}, DType::f64), .rtol = 1e-5, .atol = 1e-4);
#ifdef _OPENMP
  auto run = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor out = conv2d(x0, w0, b0, {4, 4}).contiguous();
    omp_set_num_threads(prev);
    return out.to_vector<float>();
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
#endif
}

TEST_CASE("conv2d: two cases computed with PyTorch") {
  // Pasted from python3 + torch 2.15 (F.conv2d, float64):
  //   x = ((arange(40) % 7) - 3) * 0.25 reshaped (1, 2, 4, 5); w = ((arange(24) % 5) - 2) * 0.5 as (4, 1, 3, 2)
  //   b = [0.1, -0.2, 0.3, -0.4]; stride (2, 1), padding (1, 0), dilation (1, 2), groups 2
  std::vector<double> xv, wv;
  for (int i = 0; i < 40; ++i) xv.push_back((i % 7 - 3) * 0.25);
  for (int i = 0; i < 24; ++i) wv.push_back((i % 5 - 2) * 0.5);
  Tensor x = from_vector(xv, {1, 2, 4, 5}), w = from_vector(wv, {4, 1, 3, 2});
  Tensor b = from_vector(std::vector<double>{0.1, -0.2, 0.3, -0.4}, {4});
  Tensor expected = from_vector(
      std::vector<double>{1.225, 1.35, -0.275, -0.275, -0.525, 0.1, -0.95, -0.95, 0.8, 0.55, 0.425, -0.575,
                          1.425, -0.45, -0.575, 0.55, -0.325, -0.325, -0.525, 0.1, -0.15, 0.475, -1.15, -1.025},
      {1, 4, 2, 3});
  RV_EXPECT_CLOSE(conv2d(x, w, b, {2, 1}, {1, 0}, {1, 2}, 2), expected, .rtol = 1e-6, .atol = 1e-6);

  //   F.conv_transpose2d: x = ((arange(12) % 5) - 2) * 0.5 as (1, 2, 3, 2);
  //   w = ((arange(24) % 7) - 3) * 0.25 as (2, 2, 2, 3); b = [0.5, -1.0]; stride 2, padding 1, output_padding 1
  std::vector<double> xt, wt;
  for (int i = 0; i < 12; ++i) xt.push_back((i % 5 - 2) * 0.5);
  for (int i = 0; i < 24; ++i) wt.push_back((i % 7 - 3) * 0.25);
  Tensor expected_t = from_vector(
      std::vector<double>{0.375, 0.0, 0.375, 0.25, 0.875, 0.25, 1.0, -0.375, 0.375, 0.0, 0.375, 0.75, -0.75, 1.5,
                          0.625, 1.125, 1.0, 1.25, 0.375, 0.0, -0.75, -1.0, -1.0, -1.125, -0.75, 0.0, -0.875, -0.5,
                          -1.25, -2.0, -1.5, -1.125, -2.25, -3.125, -0.5, -0.875, -0.5, 0.125, -0.75, -1.125},
      {1, 2, 5, 4});
  RV_EXPECT_CLOSE(conv_transpose2d(from_vector(xt, {1, 2, 3, 2}), from_vector(wt, {2, 2, 2, 3}),
                                   from_vector(std::vector<double>{0.5, -1.0}, {2}), {2, 2}, {1, 1}, {1, 1}),
                  expected_t, .rtol = 1e-6, .atol = 1e-6);
}

TEST_CASE("conv_transpose2d matches the scatter loop") {
  check_conv_transpose2d({2, 3, 4, 5}, {3, 2, 3, 3}, {});
  check_conv_transpose2d({2, 3, 4, 5}, {3, 2, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}});
  check_conv_transpose2d({2, 4, 3, 5}, {4, 3, 2, 3}, {.stride = {2, 3}, .padding = {0, 1}, .groups = 2,
                                                      .output_padding = {1, 2}});
  check_conv_transpose2d({1, 2, 4, 4}, {2, 3, 3, 2}, {.stride = {1, 2}, .dilation = {2, 2}, .output_padding = {1, 1}},
                         false);  // output_padding >= stride but < dilation
  check_conv_transpose2d({2, 3, 4, 4}, {3, 1, 3, 3}, {.padding = {1, 1}, .groups = 3});  // depthwise
  check_conv_transpose2d({2, 3, 5, 4}, {3, 4, 1, 1}, {});                               // 1x1
  check_conv_transpose2d({2, 3, 3, 3}, {3, 4, 2, 2}, {.stride = {2, 2}});               // "unpatchify"
}

TEST_CASE("conv2d gradients satisfy the adjoint identities") {
  // <conv(x, w), gy> = <x, dx> = <w, dw>, checked on odd sizes with every feature on; the
  // full finite-difference checks are in tests/gradcheck/test_conv.cpp.
  const Cfg cfgs[] = {{.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 1}, .groups = 2},
                      {.stride = {4, 4}},  // patch-embed path
                      {}};
  const Shape ws[] = {{4, 2, 3, 2}, {6, 4, 4, 4}, {3, 4, 1, 1}};
  for (int k = 0; k < 3; ++k) {
    Tensor x = test_tensor({2, 4, 9, 8}, 7, DType::f64).requires_grad_();
    Tensor w = test_tensor(ws[k], 8, DType::f64).requires_grad_();
    Tensor y = conv2d(x, w, Tensor(), cfgs[k].stride, cfgs[k].padding, cfgs[k].dilation, cfgs[k].groups);
    Tensor gy = test_tensor(y.shape(), 9, DType::f64);
    sum(y * gy).backward();
    autograd::NoGradGuard ng;
    const double lhs = sum(y * gy).item();
    CHECK(sum(x.detach() * x.grad()).item() == doctest::Approx(lhs).epsilon(1e-10));
    CHECK(sum(w.detach() * w.grad()).item() == doctest::Approx(lhs).epsilon(1e-10));
  }
}

TEST_CASE("conv2d and conv_transpose2d are adjoint in x") {
  // <conv2d(x, w), u> == <x, conv_transpose2d(u, w)> with the same stride/padding/dilation/groups
  Tensor x = test_tensor({2, 4, 9, 7}, 10, DType::f64), w = test_tensor({6, 2, 3, 3}, 11, DType::f64);
  Tensor y = conv2d(x, w, Tensor(), {2, 2}, {1, 1}, {1, 1}, 2);
  Tensor u = test_tensor(y.shape(), 12, DType::f64);
  Tensor xt = conv_transpose2d(u, w, Tensor(), {2, 2}, {1, 1}, {0, 0}, {1, 1}, 2);
  CHECK(xt.shape() == x.shape());
  CHECK(sum(y * u).item() == doctest::Approx(sum(x * xt).item()).epsilon(1e-12));
}

TEST_CASE("conv: non-contiguous inputs, f64, bf16, empty batch") {
  Tensor xn = test::test_noncontiguous({2, 3, 6, 7}, 1), w = test_tensor({4, 3, 3, 3}, 2);
  RV_EXPECT_CLOSE(conv2d(xn, w, Tensor(), {1, 1}, {1, 1}), ref_conv2d(xn, w, Tensor(), {.padding = {1, 1}}),
                  .rtol = 1e-5, .atol = 1e-5);
  Tensor wn = test::test_noncontiguous({4, 3, 3, 3}, 2);
  RV_EXPECT_CLOSE(conv_transpose2d(test::test_noncontiguous({2, 4, 3, 5}, 3), wn),
                  ref_conv_transpose2d(test_tensor({2, 4, 3, 5}, 3), w, Tensor(), {}), .rtol = 1e-5, .atol = 1e-5);
  Tensor xd = test_tensor({2, 3, 6, 7}, 1, DType::f64), wd = test_tensor({4, 3, 3, 3}, 2, DType::f64);
  Tensor yd = conv2d(xd, wd, Tensor(), {2, 2}, {1, 1});
  CHECK(yd.dtype() == DType::f64);
  RV_EXPECT_CLOSE(yd, ref_conv2d(xd, wd, Tensor(), {.stride = {2, 2}, .padding = {1, 1}}), .rtol = 1e-12,
                  .atol = 1e-12);
  Tensor xh = xd.to(DType::bf16), wh = wd.to(DType::bf16);
  Tensor yh = conv2d(xh, wh, Tensor(), {1, 1}, {1, 1});
  CHECK(yh.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(yh, ref_conv2d(xh, wh, Tensor(), {.padding = {1, 1}}).to(DType::bf16), .rtol = 8e-3, .atol = 2e-3);
  CHECK(conv2d(zeros({0, 3, 6, 7}), w).shape() == Shape{0, 4, 4, 5});
  CHECK(conv_transpose2d(zeros({0, 4, 3, 5}), w).shape() == Shape{0, 3, 5, 7});
}

TEST_CASE("conv: error messages") {
  Tensor x = zeros({1, 4, 5, 5});
  CHECK_THROWS_WITH(conv2d(zeros({4, 5, 5}), zeros({2, 4, 3, 3})), doctest::Contains("conv2d: x must be 4-D"));
  CHECK_THROWS_WITH(conv2d(x, zeros({2, 3, 3, 3})), doctest::Contains("do not fit groups=1"));
  CHECK_THROWS_WITH(conv2d(x, zeros({3, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                    doctest::Contains("do not fit groups=2"));
  CHECK_THROWS_WITH(conv2d(x, zeros({2, 4, 7, 3})), doctest::Contains("does not fit input"));
  CHECK_THROWS_WITH(conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), doctest::Contains("bias must have shape [2]"));
  CHECK_THROWS_WITH(conv2d(x, zeros({2, 4, 3, 3}), Tensor(), {0, 1}), doctest::Contains("stride must be >= 1"));
  CHECK_THROWS_WITH(conv2d(x, zeros({2, 4, 3, 3}), Tensor(), {1, 1}, {-1, 0}), doctest::Contains("padding must be >= 0"));
  CHECK_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}, DType::i64), zeros({2, 4, 3, 3})), doctest::Contains("expected float"));
  CHECK_THROWS_WITH(conv_transpose2d(x, zeros({4, 2, 3, 3}), Tensor(), {2, 2}, {0, 0}, {2, 0}),
                    doctest::Contains("output_padding must be smaller"));
  CHECK_THROWS_WITH(conv_transpose2d(x, zeros({3, 2, 3, 3})), doctest::Contains("conv_transpose2d: x [1, 4, 5, 5]"));
  CHECK_THROWS_WITH(conv_transpose2d(x, zeros({4, 2, 3, 3}), zeros({4})), doctest::Contains("bias must have shape [2]"));
}
