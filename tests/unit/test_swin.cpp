// test_swin.cpp: the parts of models/swin* against plain reference loops, and the whole model's
// invariants: the RPB index and gather, the table resize, the window rule, the -100 shift mask
// (against a literal transcription of timm's slicing), window partition, RoPE's dependence on
// relative positions only, forward + backward of every variant at square, non-square and padded
// sizes, stage outputs and feature_info, gradchecks of a block, and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "models/swin.h"
#include "models/swin_rel_pos_bias.h"
#include "models/swin_window.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::models;
using rv::test::test_tensor;

namespace {

ModelConfig tiny(const std::string& pos_embed, int64_t h, int64_t w, int64_t ws = 0) {
  ModelConfig c;
  c.name = "swin_test_" + pos_embed;
  c.arch = "swin";
  c.pos_embed = pos_embed;
  c.img_h = h, c.img_w = w;
  c.patch_size = 4;
  c.embed_dim = 16;
  c.depths = {1, 1, 2, 1};
  c.num_heads = {1, 2, 4, 8};  // d = 16
  c.num_classes = 5;
  c.norm_eps = 1e-5;
  c.window_size = ws;
  c.rope_theta = 50.0;
  c.seed = 7;
  return c;
}

// timm's get_attn_mask written out with Python's slice rules (a -0 bound is 0, so with no shift
// the last slice covers the whole axis and overwrites the others), for the mask check.
std::vector<int64_t> timm_label_map(int64_t Hp, int64_t Wp, const SwinWindow& w) {
  auto slices = [](int64_t n, int64_t win, int64_t s) {
    auto py = [n](int64_t i, bool none) { return none ? n : (i < 0 ? n + i : i); };
    // (0, -win), (-win, -s), (-s, None); -0 is 0
    return std::vector<std::pair<int64_t, int64_t>>{{0, py(-win, false)},
                                                    {py(-win, false), s == 0 ? 0 : py(-s, false)},
                                                    {s == 0 ? 0 : py(-s, false), n}};
  };
  std::vector<int64_t> img(size_t(Hp * Wp), 0);
  int64_t cnt = 0;
  for (auto [h0, h1] : slices(Hp, w.wh, w.sh))
    for (auto [w0, w1] : slices(Wp, w.ww, w.sw)) {
      for (int64_t r = h0; r < h1; ++r)
        for (int64_t c = w0; c < w1; ++c) img[size_t(r * Wp + c)] = cnt;
      ++cnt;
    }
  return img;
}

}  // namespace

TEST_CASE("relative_position_index: the formula on square and rectangular windows") {
  Tensor idx2 = relative_position_index(2, 2);
  CHECK(idx2.to_vector<int64_t>() == std::vector<int64_t>{4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4});
  for (auto [wh, ww] : std::vector<std::pair<int64_t, int64_t>>{{7, 7}, {2, 3}, {3, 1}, {1, 1}}) {
    Tensor idx = relative_position_index(wh, ww);
    const int64_t N = wh * ww;
    REQUIRE(idx.shape() == Shape{N, N});
    auto v = idx.to_vector<int64_t>();
    bool ok = true;
    int64_t hi = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const int64_t ri = i / ww, ci = i % ww, rj = j / ww, cj = j % ww;
        ok &= v[size_t(i * N + j)] == (ri - rj + wh - 1) * (2 * ww - 1) + (ci - cj + ww - 1);
        hi = std::max(hi, v[size_t(i * N + j)]);
      }
    CHECK(ok);
    CHECK(hi == (2 * wh - 1) * (2 * ww - 1) - 1);  // every row of the table is reachable
  }
  CHECK_THROWS_WITH_AS(relative_position_index(0, 3), doctest::Contains("relative_position_index"), std::invalid_argument);
}

TEST_CASE("relative_position_bias: bias[h, i, j] = table[idx[i, j], h]; gradcheck of the table") {
  const int64_t wh = 3, ww = 2, NH = 3, N = wh * ww, L = (2 * wh - 1) * (2 * ww - 1);
  Tensor table = test_tensor({L, NH}, 11);
  Tensor idx = relative_position_index(wh, ww);
  Tensor bias = relative_position_bias(table, idx);
  REQUIRE(bias.shape() == Shape{NH, N, N});
  auto t = table.to_vector<float>(), b = bias.to_vector<float>();
  auto iv = idx.to_vector<int64_t>();
  bool ok = true;
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t i = 0; i < N * N; ++i) ok &= b[size_t(h * N * N + i)] == t[size_t(iv[size_t(i)] * NH + h)];
  CHECK(ok);
  // A non-contiguous table gives the same values.
  Tensor nc = test_tensor({NH, L}, 11).transpose(0, 1);
  RV_EXPECT_CLOSE(relative_position_bias(nc, idx), relative_position_bias(nc.contiguous(), idx), 0.0, 0.0);
  RV_GRADCHECK([&](const std::vector<Tensor>& in) { return relative_position_bias(in[0], idx); },
               (std::vector<Tensor>{test::grad_input({L, NH}, 12)}));
  CHECK_THROWS_WITH_AS(relative_position_bias(test_tensor({L}, 1), idx), doctest::Contains("expected table"),
                       std::invalid_argument);
}

TEST_CASE("resize_rel_pos_bias_table: same size is the table itself, shapes, constant tables, errors, gradcheck") {
  Tensor table = test_tensor({49, 3}, 21);
  CHECK(resize_rel_pos_bias_table(table, 4, 4).raw_data() == table.raw_data());
  CHECK(resize_rel_pos_bias_table(table, 4, 7).shape() == Shape{169, 3});
  CHECK(resize_rel_pos_bias_table(table, 4, 2).shape() == Shape{9, 3});
  CHECK(resize_rel_pos_bias_table(table, 4, 2, 5).shape() == Shape{27, 3});
  // Bicubic reproduces a constant per head (its weights sum to 1).
  Tensor c = full({49, 2}, 0.0);
  {
    float* p = c.data<float>();
    for (int64_t i = 0; i < 49; ++i) p[2 * i] = 0.5f, p[2 * i + 1] = -2.0f;
  }
  Tensor r = resize_rel_pos_bias_table(c, 4, 6);
  RV_EXPECT_CLOSE(r.select(1, 0), full({121}, 0.5), 1e-6, 1e-6);
  RV_EXPECT_CLOSE(r.select(1, 1), full({121}, -2.0), 1e-6, 1e-6);
  CHECK_THROWS_WITH_AS(resize_rel_pos_bias_table(table, 3, 5), doctest::Contains("expected table of shape (25, NH)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(resize_rel_pos_bias_table(table, 4, 0), doctest::Contains("positive"), std::invalid_argument);
  RV_GRADCHECK([](const std::vector<Tensor>& in) { return resize_rel_pos_bias_table(in[0], 2, 3); },
               (std::vector<Tensor>{test::grad_input({9, 2}, 22)}));
}

TEST_CASE("swin_block_window: timm's per-axis rule, the MS rule on square stages") {
  auto eq = [](SwinWindow a, SwinWindow b) { return a.wh == b.wh && a.ww == b.ww && a.sh == b.sh && a.sw == b.sw; };
  CHECK(eq(swin_block_window(56, 56, 7, true), {7, 7, 3, 3}));
  CHECK(eq(swin_block_window(56, 56, 7, false), {7, 7, 0, 0}));
  CHECK(eq(swin_block_window(7, 7, 7, true), {7, 7, 0, 0}));    // 224's last stage: one window, no shift
  CHECK(eq(swin_block_window(3, 3, 7, true), {3, 3, 0, 0}));    // window shrinks to the map
  CHECK(eq(swin_block_window(4, 6, 4, true), {4, 4, 0, 2}));    // non-square: shift along W only
  CHECK(eq(swin_block_window(3, 10, 4, true), {3, 4, 0, 2}));   // and a rectangular window
  CHECK(eq(swin_block_window(10, 10, 4, true), {4, 4, 2, 2}));  // 10 is padded to 12 by the block
  CHECK_THROWS_WITH_AS(swin_block_window(0, 4, 4, true), doctest::Contains("swin_block_window"), std::invalid_argument);
}

TEST_CASE("swin_shift_mask: 0 within a region, -100 across, equal to timm's construction") {
  CHECK_FALSE(swin_shift_mask(8, 8, {4, 4, 0, 0}).defined());
  const std::vector<std::tuple<int64_t, int64_t, SwinWindow>> cases = {
      {8, 8, {4, 4, 2, 2}}, {14, 14, {7, 7, 3, 3}}, {4, 8, {4, 4, 0, 2}}, {12, 12, {4, 4, 2, 2}},
      {6, 8, {3, 4, 0, 2}}, {8, 4, {4, 4, 2, 0}}};
  for (const auto& [Hp, Wp, w] : cases) {
    CAPTURE(Hp);
    CAPTURE(Wp);
    Tensor m = swin_shift_mask(Hp, Wp, w);
    const int64_t nWw = Wp / w.ww, nW = (Hp / w.wh) * nWw, N = w.area();
    REQUIRE(m.shape() == Shape{nW, N, N});
    auto label = timm_label_map(Hp, Wp, w);
    auto mv = m.to_vector<float>();
    bool ok = true;
    int64_t masked = 0;
    for (int64_t win = 0; win < nW; ++win)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          const int64_t r0 = (win / nWw) * w.wh, c0 = (win % nWw) * w.ww;
          const int64_t li = label[size_t((r0 + i / w.ww) * Wp + c0 + i % w.ww)];
          const int64_t lj = label[size_t((r0 + j / w.ww) * Wp + c0 + j % w.ww)];
          const float v = mv[size_t((win * N + i) * N + j)];
          ok &= v == (li == lj ? 0.0f : -100.0f);
          masked += v != 0.0f;
        }
    CHECK(ok);
    CHECK(masked > 0);  // a shifted map always has a window that mixes regions
  }
}

TEST_CASE("swin_partition / swin_reverse: the layout of a plain loop, exact inverse, non-contiguous input") {
  const int64_t B = 2, H = 6, W = 8, C = 3, wh = 3, ww = 2;
  Tensor x = test::test_noncontiguous({B, H, W, C}, 31);
  Tensor win = swin_partition(x, wh, ww);
  const int64_t nW = (H / wh) * (W / ww);
  REQUIRE(win.shape() == Shape{B * nW, wh * ww, C});
  auto xv = x.contiguous().to_vector<float>(), wv = win.to_vector<float>();
  bool ok = true;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t wr = 0; wr < H / wh; ++wr)
      for (int64_t wc = 0; wc < W / ww; ++wc)
        for (int64_t i = 0; i < wh * ww; ++i)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t r = wr * wh + i / ww, col = wc * ww + i % ww;
            const int64_t widx = b * nW + wr * (W / ww) + wc;
            ok &= wv[size_t((widx * wh * ww + i) * C + c)] == xv[size_t(((b * H + r) * W + col) * C + c)];
          }
  CHECK(ok);
  RV_EXPECT_CLOSE(swin_reverse(win, wh, ww, H, W), x, 0.0, 0.0);
  // Square windows agree with the engine's window_partition op.
  RV_EXPECT_CLOSE(swin_partition(x.narrow(2, 0, 6), 3, 3), window_partition(x.narrow(2, 0, 6), 3), 0.0, 0.0);
  CHECK_THROWS_WITH_AS(swin_partition(x, 4, 2), doctest::Contains("multiples of the window"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(swin_reverse(win, wh, ww, 7, W), doctest::Contains("swin_reverse"), std::invalid_argument);
}

TEST_CASE("RoPE-Swin: attention depends only on relative positions inside a window") {
  for (const char* pe : {"rope_axial", "rope_mixed"}) {
    CAPTURE(pe);
    auto model = std::make_shared<SwinTransformer>(tiny(pe, 64, 96));
    model->eval();
    Tensor x = test_tensor({1, 3, 64, 96}, 41);
    autograd::NoGradGuard ng;
    Tensor base = model->forward(x);
    // Shift every window's coordinates by the same (dx, dy): the logits must not move.
    auto shift_all = [&](float dx, float dy) {
      for (auto& [name, m] : model->named_modules())
        if (auto* a = dynamic_cast<SwinWindowAttention*>(m)) {
          float* p = a->rope_pos.data<float>();
          for (int64_t n = 0; n < a->rope_pos.size(0); ++n) p[2 * n] += dx, p[2 * n + 1] += dy;
        }
    };
    shift_all(3.0f, -2.0f);
    RV_EXPECT_CLOSE(model->forward(x), base, 0.0, 1e-5);
    shift_all(-3.0f, 2.0f);
    RV_EXPECT_CLOSE(model->forward(x), base, 0.0, 0.0);
    // Control: scaling the coordinates changes the relative offsets, so the logits move.
    for (auto& [name, m] : model->named_modules())
      if (auto* a = dynamic_cast<SwinWindowAttention*>(m)) {
        float* p = a->rope_pos.data<float>();
        for (int64_t n = 0; n < 2 * a->rope_pos.size(0); ++n) p[n] *= 2.0f;
      }
    CHECK(max(abs(sub(model->forward(x), base))).item() > 1e-4);
  }
}

TEST_CASE("every variant: forward + backward at square, non-square and padded sizes") {
  struct Size {
    int64_t h, w, ws;
  };
  // 64: ws 2 from img // 32; 64x96: non-square; 72x40: maps 18x10 -> 9x5 -> 5x3 -> 3x2,
  // odd sizes through the merges and windows padded at every stage; 32: one window at the end.
  const Size sizes[] = {{64, 64, 0}, {64, 96, 0}, {72, 40, 3}, {32, 32, 2}};
  for (const char* pe : {"rpb", "rope_axial", "rope_mixed"})
    for (const Size& s : sizes) {
      CAPTURE(pe);
      CAPTURE(s.h);
      CAPTURE(s.w);
      ModelConfig cfg = tiny(pe, s.h, s.w, s.ws);
      cfg.drop_path_rate = 0.1;  // training mode: stochastic depth draws from the model's generator
      auto model = std::make_shared<SwinTransformer>(cfg);
      Tensor x = test_tensor({2, 3, s.h, s.w}, 51);
      Tensor feats = model->forward_features(x);
      Tensor logits = model->forward_head(feats);
      REQUIRE(logits.shape() == Shape{2, 5});
      int64_t fh = s.h / 4, fw = s.w / 4;
      for (int i = 0; i < 3; ++i) fh = (fh + 1) / 2, fw = (fw + 1) / 2;
      CHECK(feats.shape() == Shape{2, fh, fw, 128});
      cross_entropy(logits, from_vector(std::vector<int64_t>{1, 4}, {2})).backward();
      int64_t with_grad = 0;
      for (const auto& [name, p] : model->named_parameters()) {
        CAPTURE(name);
        REQUIRE(p.grad().defined());
        CHECK(std::isfinite(sum(abs(p.grad())).item()));
        with_grad += sum(abs(p.grad())).item() > 0;
      }
      CHECK(with_grad > int64_t(model->named_parameters().size()) * 3 / 4);
    }
}

TEST_CASE("forward_intermediates and feature_info: NCHW stage maps, reductions 4 8 16 32") {
  auto model = std::make_shared<SwinTransformer>(tiny("rpb", 64, 96));
  auto info = model->feature_info();
  REQUIRE(info.size() == 4);
  for (size_t s = 0; s < 4; ++s) {
    CHECK(info[s].module == "layers." + std::to_string(s));
    CHECK(info[s].channels == (16 << s));
    CHECK(info[s].reduction == (4 << s));
  }
  Tensor x = test_tensor({1, 3, 64, 96}, 61);
  auto maps = model->forward_intermediates(x, {0, 1, 2, -1});
  REQUIRE(maps.size() == 4);
  for (size_t s = 0; s < 4; ++s)
    CHECK(maps[s].shape() == Shape{1, info[s].channels, 64 / info[s].reduction, 96 / info[s].reduction});
  // The last stage map, normed, is forward_features.
  RV_EXPECT_CLOSE(model->norm->forward(maps[3].permute({0, 2, 3, 1})), model->forward_features(x), 1e-5, 1e-6);
  CHECK(model->forward_intermediates(x, {}).empty());
  CHECK_THROWS_WITH_AS(model->forward_intermediates(x, {4}), doctest::Contains("stage index 4"), std::out_of_range);
  CHECK(model->forward_head(model->forward_features(x), /*pre_logits=*/true).shape() == Shape{1, 128});
}

TEST_CASE("PatchMerging: x0 x1 x2 x3 channel order of a plain loop, odd sizes padded, gradcheck") {
  Generator gen(5);
  PatchMerging merge(3, 1e-5, gen);
  {  // a non-trivial norm, so that a wrong channel order shows
    autograd::NoGradGuard ng;
    merge.norm->weight.copy_(test_tensor({12}, 83, DType::f32, 0.5, 1.5));
    merge.norm->bias.copy_(test_tensor({12}, 84));
  }
  const int64_t B = 2, H = 5, W = 3, C = 3, H2 = 3, W2 = 2;  // odd: padded to 6x4 with zeros
  Tensor x = test::test_noncontiguous({B, H, W, C}, 81);
  // The concatenation by the loop: block k holds x[2i + dy, 2j + dx] with
  // (dy, dx) = (0,0), (1,0), (0,1), (1,1) for x0, x1, x2, x3.
  const int64_t dys[] = {0, 1, 0, 1}, dxs[] = {0, 0, 1, 1};
  auto xv = x.contiguous().to_vector<float>();
  std::vector<float> cat4(size_t(B * H2 * W2 * 4 * C), 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H2; ++i)
      for (int64_t j = 0; j < W2; ++j)
        for (int64_t k = 0; k < 4; ++k)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t r = 2 * i + dys[k], col = 2 * j + dxs[k];
            cat4[size_t(((b * H2 + i) * W2 + j) * 4 * C + k * C + c)] =
                (r < H && col < W) ? xv[size_t(((b * H + r) * W + col) * C + c)] : 0.0f;
          }
  Tensor expected = merge.reduction->forward(merge.norm->forward(from_vector(cat4, {B, H2, W2, 4 * C})));
  RV_EXPECT_CLOSE(merge.forward(x), expected, 1e-6, 1e-6);
  merge.to(DType::f64);
  RV_GRADCHECK([&](const std::vector<Tensor>& in) { return merge.forward(in[0]); },
               (std::vector<Tensor>{test::grad_input({1, 3, 5, 3}, 82), merge.reduction->weight}));
  CHECK_THROWS_WITH_AS(merge.forward(test_tensor({3, 5, 3}, 1)), doctest::Contains("PatchMerging: expected x (B, H, W, C)"),
                       std::invalid_argument);
}

TEST_CASE("gradcheck of a shifted, padded Swin block (RPB and RoPE-Mixed) in float64") {
  for (const char* pe : {"rpb", "rope_mixed"}) {
    CAPTURE(pe);
    ModelConfig c = tiny(pe, 32, 32);
    Generator gen(3);
    // 5x5 map, window 2, shift 1: padded to 6x6 and masked; heads 2 of d 4.
    SwinBlock block(8, 2, 5, 5, 2, /*shifted=*/true, 0.0, c, gen);
    REQUIRE(block.window().shifted());
    REQUIRE(block.padded_h() == 6);
    block.to(DType::f64);
    Tensor pos = block.attn->relative_position_bias_table.defined() ? block.attn->relative_position_bias_table
                                                                    : block.attn->rope_freqs;
    {  // values of order 1, so that the position terms matter
      autograd::NoGradGuard ng;
      pos.copy_(test_tensor(pos.shape(), 71, DType::f64));
    }
    RV_GRADCHECK([&](const std::vector<Tensor>& in) { return block.forward(in[0]); },
                 (std::vector<Tensor>{test::grad_input({1, 5, 5, 8}, 72), pos}));
  }
}

TEST_CASE("Swin errors name the model, the argument and what was expected") {
  auto model = std::make_shared<SwinTransformer>(tiny("rpb", 64, 64));
  CHECK_THROWS_WITH_AS(model->forward(test_tensor({1, 3, 64, 96}, 1)), doctest::Contains("expected images (B, 3, 64, 64)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(SwinTransformer(tiny("ape", 64, 64)), doctest::Contains("pos_embed 'ape'"), std::invalid_argument);
  ModelConfig odd = tiny("rope_axial", 64, 64);
  odd.embed_dim = 12;
  odd.num_heads = {2, 2, 2, 2};  // d = 6
  CHECK_THROWS_WITH_AS(SwinTransformer{odd}, doctest::Contains("head dim divisible by 4"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(SwinTransformer(tiny("rpb", 16, 16)), doctest::Contains("set window_size explicitly"),
                       std::invalid_argument);
  Generator gen(1);
  SwinBlock block(8, 2, 4, 4, 2, false, 0.0, tiny("rpb", 32, 32), gen);
  CHECK_THROWS_WITH_AS(block.forward(test_tensor({1, 4, 5, 8}, 2)), doctest::Contains("SwinBlock: expected x (B, 4, 4, C)"),
                       std::invalid_argument);
}
