// pooling: max / avg / adaptive pooling against plain reference loops (odd sizes, padding,
// dilation, ceil_mode, (C, H, W) input, non-contiguous, bf16), against values printed by
// PyTorch, the output-size rule, and errors.
#include <cmath>
#include <functional>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// Inputs that PyTorch can rebuild exactly (see the literal test below).
Tensor ties(const Shape& s) {  // small integers: many equal maxima
  std::vector<double> v(size_t(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(int64_t(i * 7) % 11 - 5);
  return from_vector(v, s);
}
Tensor smooth(const Shape& s) {
  std::vector<double> v(size_t(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7 * double(i)) + 0.01 * double(i);
  return from_vector(v, s);
}

// Reference max pool: every tap of every window, padding = -inf, strict > keeps the first.
std::pair<Tensor, Tensor> ref_max_pool(const Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                       int64_t pw, int64_t dh, int64_t dw, bool ceil) {
  const int64_t H = x.size(-2), W = x.size(-1), P = x.numel() / (H * W);
  const int64_t OH = pool_output_size(H, kh, sh, ph, dh, ceil), OW = pool_output_size(W, kw, sw, pw, dw, ceil);
  std::vector<double> xv = x.to_double_vector(), ov, iv;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double best = -INFINITY;
        int64_t bi = -1;
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            int64_t h = oh * sh - ph + i * dh, w = ow * sw - pw + j * dw;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = xv[p * H * W + h * W + w];
            if (bi < 0 || v > best) best = v, bi = h * W + w;
          }
        ov.push_back(best);
        iv.push_back(double(bi));
      }
  Shape os = x.shape();
  os[os.size() - 2] = OH;
  os[os.size() - 1] = OW;
  return {from_vector(ov, os, x.dtype()), from_vector(iv, os, DType::i64)};
}

// Reference avg pool, written from the definition: window of k cells starting at o*s-p.
Tensor ref_avg_pool(const Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool ceil,
                    bool include_pad, int64_t divisor) {
  const int64_t H = x.size(-2), W = x.size(-1), P = x.numel() / (H * W);
  const int64_t OH = pool_output_size(H, kh, sh, ph, 1, ceil), OW = pool_output_size(W, kw, sw, pw, 1, ceil);
  std::vector<double> xv = x.to_double_vector(), ov;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double sum = 0;
        int64_t real = 0, padded = 0;
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            int64_t h = oh * sh - ph + i, w = ow * sw - pw + j;
            if (h < H + ph && w < W + pw) ++padded;  // taps beyond the right/bottom padding never count
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            sum += xv[p * H * W + h * W + w];
            ++real;
          }
        ov.push_back(sum / double(divisor > 0 ? divisor : include_pad ? padded : real));
      }
  Shape os = x.shape();
  os[os.size() - 2] = OH;
  os[os.size() - 1] = OW;
  return from_vector(ov, os, x.dtype());
}

// Reference adaptive pooling (avg or max) from the window definition.
Tensor ref_adaptive(const Tensor& x, int64_t OH, int64_t OW, bool is_max) {
  const int64_t H = x.size(-2), W = x.size(-1), P = x.numel() / (H * W);
  std::vector<double> xv = x.to_double_vector(), ov;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t h0 = int64_t(std::floor(double(oh * H) / double(OH))), h1 = int64_t(std::ceil(double((oh + 1) * H) / double(OH)));
        int64_t w0 = int64_t(std::floor(double(ow * W) / double(OW))), w1 = int64_t(std::ceil(double((ow + 1) * W) / double(OW)));
        double acc = is_max ? -INFINITY : 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            double v = xv[p * H * W + h * W + w];
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        ov.push_back(is_max ? acc : acc / double((h1 - h0) * (w1 - w0)));
      }
  Shape os = x.shape();
  os[os.size() - 2] = OH;
  os[os.size() - 1] = OW;
  return from_vector(ov, os, x.dtype());
}

}  // namespace

TEST_CASE("pool_output_size follows PyTorch, including the ceil_mode rule") {
  CHECK(pool_output_size(7, 3, 2, 1, 1, false) == 4);
  CHECK(pool_output_size(6, 3, 2, 1, 1, false) == 3);
  CHECK(pool_output_size(6, 3, 2, 1, 1, true) == 4);
  // ceil would give 3 windows, but the third would start at 4 >= 4 + 0: dropped
  CHECK(pool_output_size(4, 2, 2, 0, 1, true) == 2);
  CHECK(pool_output_size(5, 2, 2, 0, 1, true) == 3);
  CHECK(pool_output_size(5, 3, 3, 1, 1, true) == 2);  // (2)*3=6 >= 5+1 -> dropped from 3
  CHECK(pool_output_size(7, 3, 2, 1, 2, true) == 3);
  CHECK(pool_output_size(3, 5, 1, 0, 1, false) == -1);
}

TEST_CASE("max_pool2d matches the reference loop") {
  struct C { Shape s; int64_t kh, kw, sh, sw, ph, pw, dh, dw; bool ceil; };
  std::vector<C> cases = {{{2, 3, 7, 9}, 3, 3, 2, 2, 1, 1, 1, 1, false}, {{2, 3, 7, 9}, 3, 2, 2, 3, 1, 1, 2, 1, true},
                          {{3, 6, 5}, 2, 2, 2, 2, 0, 0, 1, 1, true},     {{1, 2, 8, 8}, 4, 3, 3, 1, 2, 1, 1, 3, false},
                          {{2, 1, 5, 6}, 5, 6, 1, 1, 0, 0, 1, 1, false}};
  uint64_t seed = 3;
  for (const C& c : cases) {
    CAPTURE(shape_str(c.s));
    for (int variant = 0; variant < 2; ++variant) {
      Tensor x = variant == 0 ? test::test_tensor(c.s, seed) : test::test_noncontiguous(c.s, seed);
      auto [y, idx] = max_pool2d_with_indices(x, {c.kh, c.kw}, {c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.ceil);
      auto [ry, ridx] = ref_max_pool(x, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.ceil);
      RV_EXPECT_CLOSE(y, ry, .rtol = 0, .atol = 0);
      CHECK(idx.to_vector<int64_t>() == ridx.to_vector<int64_t>());
    }
    ++seed;
  }
  // ties keep the first maximum; a NaN is chosen over any number
  Tensor t = from_vector(std::vector<float>{1, 3, 3, 2, NAN, 0, 3, 1}, {1, 1, 2, 4});
  auto [y, idx] = max_pool2d_with_indices(t, {1, 2}, {1, 1});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 2, 4, 6, 6});  // as PyTorch prints
  CHECK(std::isnan(y.to_vector<float>()[3]));
}

TEST_CASE("avg_pool2d matches the reference loop") {
  struct C { Shape s; int64_t kh, kw, sh, sw, ph, pw; bool ceil, incl; int64_t div; };
  std::vector<C> cases = {{{2, 3, 7, 9}, 3, 3, 2, 2, 1, 1, false, true, 0}, {{2, 3, 7, 9}, 3, 3, 2, 2, 1, 1, true, false, 0},
                          {{2, 3, 6, 7}, 3, 2, 2, 3, 1, 1, true, true, 0},   {{3, 5, 5}, 4, 2, 3, 1, 2, 0, true, true, 0},
                          {{1, 2, 5, 8}, 2, 3, 2, 2, 1, 1, false, true, 7}};
  uint64_t seed = 13;
  for (const C& c : cases) {
    CAPTURE(shape_str(c.s));
    Tensor x = test::test_noncontiguous(c.s, seed++);
    std::optional<int64_t> div = c.div ? std::optional<int64_t>(c.div) : std::nullopt;
    Tensor y = avg_pool2d(x, {c.kh, c.kw}, {c.sh, c.sw}, {c.ph, c.pw}, c.ceil, c.incl, div);
    RV_EXPECT_CLOSE(y, ref_avg_pool(x, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.ceil, c.incl, c.div), .rtol = 1e-6);
  }
}

TEST_CASE("adaptive pooling matches the reference loop, shrinking and growing") {
  std::vector<std::pair<Shape, Shape>> cases = {{{2, 3, 7, 9}, {3, 4}}, {{2, 3, 7, 9}, {7, 9}}, {{3, 5, 7}, {8, 11}},
                                                {{1, 2, 14, 14}, {1, 1}}, {{2, 2, 9, 5}, {4, 2}}};
  uint64_t seed = 23;
  for (auto& [s, o] : cases) {
    CAPTURE(shape_str(s));
    Tensor x = test::test_noncontiguous(s, seed++);
    RV_EXPECT_CLOSE(adaptive_avg_pool2d(x, o), ref_adaptive(x, o[0], o[1], false), .rtol = 1e-6);
    RV_EXPECT_CLOSE(adaptive_max_pool2d(x, o), ref_adaptive(x, o[0], o[1], true), .rtol = 0, .atol = 0);
  }
  CHECK(adaptive_avg_pool2d(zeros({2, 3, 4, 4}), {0, 3}).shape() == Shape{2, 3, 0, 3});
  CHECK(adaptive_avg_pool2d(zeros({2, 3, 4, 4}), {2}).shape() == Shape{2, 3, 2, 2});
}

TEST_CASE("pooling of an empty batch, and bf16 rounding once") {
  CHECK(max_pool2d(zeros({0, 3, 4, 4}), {2}).shape() == Shape{0, 3, 2, 2});
  CHECK(avg_pool2d(zeros({0, 3, 4, 4}), {2}).shape() == Shape{0, 3, 2, 2});
  Tensor x = test::test_tensor({2, 3, 7, 9}, 5, DType::bf16);
  Tensor y = avg_pool2d(x, {3}, {2}, {1});
  CHECK(y.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(y, avg_pool2d(x.to(DType::f32), {3}, {2}, {1}).to(DType::bf16), .rtol = 0, .atol = 0);
  Tensor xg = x.detach().requires_grad_();
  max_pool2d(xg, {2}).backward(ones({2, 3, 3, 4}, DType::bf16));
  CHECK(xg.grad().dtype() == DType::bf16);
}

TEST_CASE("pooling matches PyTorch: outputs, indices and input gradients") {
  // Made with python3/PyTorch 2.x: x = ties(shape) (float((i*7) % 11 - 5)) or smooth(shape)
  // (sin(0.7 i) + 0.01 i, rounded to float32); y = F.<op>(x, ...); y.backward(g) with
  // g = 0.25 * arange(y.numel()) + 1; printed y, the indices (max ops) and x.grad.
  struct Lit {
    const char* name;
    Tensor x;
    std::function<std::pair<Tensor, Tensor>(const Tensor&)> f;
    Shape out;
    std::vector<double> y;
    std::vector<int64_t> idx;
    std::vector<double> gx;
  };
  std::vector<Lit> lits = {
      {"max_pool2d(k3, s2, p1), ties", ties({1, 2, 5, 7}), [](const Tensor& x) { return max_pool2d_with_indices(x, {3}, {2}, {1}); },
       {1, 2, 3, 4},
       {2, 5, 5, 4, 5, 4, 5, 3, 4, 3, 5, 2, 5, 5, 5, 5, 4, 5, 5, 5, 3, 5, 4, 5},
       {1, 3, 3, 6, 14, 17, 25, 20, 28, 31, 25, 34, 1, 1, 12, 12, 15, 23, 12, 12, 29, 23, 26, 34},
       {0, 1, 0, 2.75, 0, 0, 1.75, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2.25, 0, 0, 2.75, 0, 0, 0, 0, 6, 0, 0, 3, 0, 0, 3.25, 0, 0, 3.75, 0, 8.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20.5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 11.5, 0, 0, 6.5, 0, 0, 6, 0, 0, 0, 0, 6.75}},
      {"max_pool2d(k(3,2), s(2,3), p(1,1), d(2,1), ceil)", smooth({2, 1, 7, 9}), [](const Tensor& x) { return max_pool2d_with_indices(x, {3, 2}, {2, 3}, {1, 1}, {2, 1}, true); },
       {2, 1, 3, 4},
       {0.320422679, 1.28276646, -0.0775556862, -0.241357535, 0.533974469, 1.46624196, 0.071817331, -0.033909224, 0.533974469, 1.46624196, 0.071817331, -0.033909224, 1.06735575, 1.9199965, 0.447442651, 0.487431765, 1.28040993, 2.09952021, 0.598658204, 0.696971536, 1.28040993, 2.09952021, 0.598658204, 0.696971536},
       {27, 29, 32, 35, 45, 47, 50, 53, 45, 47, 50, 53, 27, 29, 32, 35, 45, 47, 50, 53, 45, 47, 50, 53},
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1.25, 0, 0, 1.5, 0, 0, 1.75, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 5.5, 0, 0, 6, 0, 0, 6.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4.25, 0, 0, 4.5, 0, 0, 4.75, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 11.5, 0, 0, 12, 0, 0, 12.5, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"avg_pool2d(k3, s2, p1, ceil, count_include_pad)", smooth({1, 2, 6, 7}), [](const Tensor& x) { return std::pair<Tensor, Tensor>(avg_pool2d(x, {3}, {2}, {1}, true, true), Tensor()); },
       {1, 2, 4, 4},
       {-0.0899446234, 0.318378985, 0.421907574, 0.0345931314, -0.0934476703, -0.217888519, 0.192975983, 0.38327378, 0.445493966, 0.622885764, 0.166573584, -0.0614908598, 0.0309750885, 0.477669567, 0.543813109, 0.111329705, -0.0226390157, -0.101400696, 0.369985908, 0.519188881, 0.652115405, 0.671999276, 0.24629201, 0.17984812, 0.24275282, 0.771757126, 1.12567043, 0.654870033, 0.0245572235, -0.00492779398, 0.468560547, 0.566994905},
       {},
       {0.111111112, 0.25, 0.138888896, 0.305555582, 0.166666672, 0.361111104, 0.194444448, 0.333333343, 0.722222209, 0.388888896, 0.833333373, 0.444444478, 0.944444418, 0.5, 0.222222224, 0.472222209, 0.25, 0.527777791, 0.277777791, 0.583333373, 0.305555552, 0.555555582, 1.16666675, 0.611111104, 1.27777779, 0.666666687, 1.38888896, 0.722222209, 0.333333343, 0.694444418, 0.361111104, 0.75, 0.388888896, 0.805555582, 0.416666657, 1, 2.06944442, 1.06944442, 2.20833325, 1.13888884, 2.34722233, 1.20833337, 0.555555582, 1.13888884, 0.583333313, 1.19444442, 0.611111104, 1.25, 0.638888896, 1.22222233, 2.5, 1.27777767, 2.61111116, 1.33333325, 2.72222233, 1.38888884, 0.666666687, 1.36111116, 0.694444418, 1.41666663, 0.722222209, 1.47222221, 0.75, 1.44444442, 2.94444442, 1.5, 3.05555558, 1.55555558, 3.16666675, 1.61111116, 0.777777791, 1.58333337, 0.805555582, 1.63888884, 0.833333313, 1.69444442, 0.861111104, 2.11111116, 4.29166698, 2.18055558, 4.43055534, 2.25, 4.56944466, 2.31944442}},
      {"avg_pool2d(k3, s2, p1, ceil, exclude pad)", smooth({1, 2, 6, 7}), [](const Tensor& x) { return std::pair<Tensor, Tensor>(avg_pool2d(x, {3}, {2}, {1}, true, false), Tensor()); },
       {1, 2, 4, 4},
       {-0.202375397, 0.477568477, 0.632861376, 0.0778345466, -0.140171513, -0.217888519, 0.192975983, 0.5749107, 0.668240964, 0.622885764, 0.166573584, -0.0922362879, 0.0929252654, 0.955339134, 1.08762622, 0.333989114, -0.0509377867, -0.15210104, 0.554978848, 1.16817498, 0.978173077, 0.671999276, 0.24629201, 0.269772172, 0.364129215, 0.771757126, 1.12567043, 0.98230505, 0.0736716688, -0.00985558797, 0.937121093, 1.70098472},
       {},
       {0.25, 0.458333313, 0.208333328, 0.458333313, 0.25, 0.6875, 0.4375, 0.583333373, 1.04166663, 0.458333313, 0.986111104, 0.527777791, 1.42361116, 0.895833373, 0.333333343, 0.583333373, 0.25, 0.527777791, 0.277777791, 0.736111164, 0.458333343, 0.833333373, 1.44444442, 0.611111104, 1.27777779, 0.666666687, 1.75, 1.08333337, 0.5, 0.861111104, 0.361111104, 0.75, 0.388888896, 1.01388884, 0.625, 2.5, 4.27777767, 1.77777767, 3.66666651, 1.88888884, 4.88888884, 3, 1.25, 2.125, 0.875, 1.79166675, 0.916666687, 2.35416675, 1.4375, 2.25, 3.81944442, 1.56944442, 3.20833349, 1.63888884, 4.20138884, 2.5625, 1, 1.69444442, 0.694444418, 1.41666663, 0.722222209, 1.84722221, 1.125, 2.16666651, 3.66666675, 1.5, 3.05555558, 1.55555558, 3.97222233, 2.41666651, 1.16666663, 1.97222221, 0.805555582, 1.63888884, 0.833333313, 2.125, 1.29166663, 5.16666651, 8.72222233, 3.55555558, 7.22222233, 3.66666651, 9.33333302, 5.66666651}},
      {"avg_pool2d(k(2,3), s(3,2), p(1,0), divisor_override=5)", smooth({1, 2, 6, 7}), [](const Tensor& x) { return std::pair<Tensor, Tensor>(avg_pool2d(x, {2, 3}, {3, 2}, {1, 0}, false, true, 5), Tensor()); },
       {1, 2, 3, 3},
       {0.331933498, 0.454729468, -0.14747417, -0.0697117671, -0.515791297, 0.302752793, 0.25000304, 0.731227517, 0.377061218, -0.231593177, 0.312485754, 0.786035538, 1.50390339, 0.929423153, 0.0570887551, -0.00224407017, 0.216128111, 0.872544944},
       {},
       {0.200000003, 0.200000003, 0.449999988, 0.25, 0.550000012, 0.300000012, 0.300000012, 0, 0, 0, 0, 0, 0, 0, 0.349999994, 0.349999994, 0.75, 0.400000006, 0.850000024, 0.449999988, 0.449999988, 0.349999994, 0.349999994, 0.75, 0.400000006, 0.850000024, 0.449999988, 0.449999988, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 1.04999995, 0.550000012, 1.1500001, 0.600000024, 0.600000024, 0.649999976, 0.649999976, 1.3499999, 0.699999988, 1.45000005, 0.75, 0.75, 0, 0, 0, 0, 0, 0, 0, 0.800000012, 0.800000012, 1.6500001, 0.850000024, 1.75, 0.899999976, 0.899999976, 0.800000012, 0.800000012, 1.6500001, 0.850000024, 1.75, 0.899999976, 0.899999976, 0, 0, 0, 0, 0, 0, 0, 0.949999988, 0.949999988, 1.95000005, 1, 2.04999995, 1.04999995, 1.04999995}},
      {"adaptive_avg_pool2d 5x7 -> 3x4, (C,H,W) input", smooth({2, 5, 7}), [](const Tensor& x) { return std::pair<Tensor, Tensor>(adaptive_avg_pool2d(x, {3, 4}), Tensor()); },
       {2, 3, 4},
       {-0.202375397, 0.477568477, 0.632861376, 0.0778345466, -0.140171513, -0.217888519, 0.192975983, 0.5749107, 0.955898762, 0.456659079, -0.293952703, -0.305348992, -0.208600044, 0.454096764, 1.07154405, 0.857996583, 0.455296606, 0.158937484, 0.312373638, 0.73234731, 1.26313472, 1.13652718, 0.342190057, -0.0725146756},
       {},
       {0.25, 0.458333313, 0.208333328, 0.458333313, 0.25, 0.6875, 0.4375, 0.583333373, 1.04166663, 0.458333313, 0.986111045, 0.527777791, 1.42361116, 0.895833373, 0.333333343, 0.583333373, 0.25, 0.527777791, 0.277777761, 0.736111104, 0.458333343, 1.08333337, 1.875, 0.791666687, 1.65277767, 0.861111045, 2.25694442, 1.39583337, 0.75, 1.29166675, 0.541666687, 1.125, 0.583333313, 1.52083325, 0.9375, 1, 1.70833325, 0.708333313, 1.45833325, 0.75, 1.9375, 1.1875, 1.83333325, 3.12499976, 1.29166663, 2.65277767, 1.36111116, 3.50694442, 2.14583325, 0.833333313, 1.41666663, 0.583333313, 1.19444442, 0.611111104, 1.56944442, 0.958333313, 2.33333325, 3.95833302, 1.625, 3.31944466, 1.69444442, 4.34027767, 2.64583325, 1.5, 2.54166651, 1.04166663, 2.125, 1.08333337, 2.77083349, 1.6875}},
      {"adaptive_avg_pool2d 5x7 -> 7x9", smooth({1, 1, 5, 7}), [](const Tensor& x) { return std::pair<Tensor, Tensor>(adaptive_avg_pool2d(x, {7, 9}), Tensor()); },
       {1, 1, 7, 9},
       {0, 0.32710883, 0.829833746, 0.949329555, 0.893209338, 0.634098768, 0.0371024609, -0.556179523, -0.81157577, -0.456226319, -0.202375397, 0.303803682, 0.690614879, 0.825097978, 0.780838132, 0.536743045, 0.0778345466, -0.181238711, -0.569465876, -0.604973555, -0.498331547, -0.100878581, 0.154424757, 0.405160189, 0.786490023, 0.868468583, 0.819852829, -0.226479128, -0.478087425, -0.774436712, -0.633657455, -0.448137105, -0.117257029, 0.536596417, 1.02508855, 1.19060731, 0.41463384, 0.15567258, -0.294456601, -0.516738355, -0.547852039, -0.401926756, 0.000683508813, 0.506441772, 0.755514979, 1.00885522, 0.955898762, 0.697617292, 0.233517468, -0.0252572, -0.213424027, -0.42830044, -0.305348992, -0.155687883, 0.961963594, 1.122365, 1.20971107, 0.866854191, 0.597052634, 0.259748459, -0.321371555, -0.59849292, -0.631798446},
       {},
       {4.125, 3.1875, 3.5625, 8.25, 4.6875, 5.0625, 8.25, 6.6875, 4.75, 5, 10.75, 5.75, 6, 9.4375, 23.5, 16.25, 16.75, 35, 18.25, 18.75, 29, 16.8125, 11.5, 11.75, 24.25, 12.5, 12.75, 19.5625, 31.125, 21.1875, 21.5625, 44.25, 22.6875, 23.0625, 35.25}},
      {"adaptive_max_pool2d 5x7 -> 3x4, ties", ties({1, 2, 5, 7}), [](const Tensor& x) { return adaptive_max_pool2d_with_indices(x, {3, 4}); },
       {1, 2, 3, 4},
       {2, 5, 5, 4, 5, 4, 5, 3, 4, 3, 5, 2, 5, 5, 5, 5, 4, 5, 5, 5, 3, 5, 4, 5},
       {1, 3, 3, 6, 14, 17, 25, 20, 28, 31, 25, 34, 1, 1, 12, 12, 15, 23, 12, 12, 29, 23, 26, 34},
       {0, 1, 0, 2.75, 0, 0, 1.75, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2.25, 0, 0, 2.75, 0, 0, 0, 0, 6, 0, 0, 3, 0, 0, 3.25, 0, 0, 3.75, 0, 8.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20.5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 11.5, 0, 0, 6.5, 0, 0, 6, 0, 0, 0, 0, 6.75}},
  };
  for (Lit& l : lits) {
    CAPTURE(l.name);
    Tensor x = l.x.detach().requires_grad_();
    auto [y, idx] = l.f(x);
    RV_EXPECT_CLOSE(y, from_vector(l.y, l.out), .rtol = 1e-6, .atol = 1e-7);
    if (!l.idx.empty()) CHECK(idx.to_vector<int64_t>() == l.idx);
    y.backward(add(mul(arange(0.0, double(y.numel()), 1.0).reshape(y.shape()), 0.25), 1.0));
    RV_EXPECT_CLOSE(x.grad(), from_vector(l.gx, x.shape()), .rtol = 1e-6, .atol = 1e-7);
  }
}

TEST_CASE("pooling errors name the op and the bad argument") {
  Tensor x = zeros({1, 2, 7, 7});
  CHECK_THROWS_WITH(max_pool2d(zeros({7, 7}), {2}), doctest::Contains("max_pool2d: expected a (B, C, H, W) or (C, H, W)"));
  CHECK_THROWS_WITH(max_pool2d(x, {8}), doctest::Contains("too small"));
  CHECK_THROWS_WITH(avg_pool2d(x, {8}), doctest::Contains("avg_pool2d: output size"));
  CHECK_THROWS_WITH(max_pool2d(x, {3}, {}, {2}), doctest::Contains("padding must be between 0 and half the kernel"));
  CHECK_THROWS_WITH(max_pool2d(x, {0}), doctest::Contains("kernel must be positive"));
  CHECK_THROWS_WITH(max_pool2d(x, {2}, {0}), doctest::Contains("stride must be positive"));
  CHECK_THROWS_WITH(max_pool2d(x, {2}, {}, {0}, {0}), doctest::Contains("dilation must be positive"));
  CHECK_THROWS_WITH(max_pool2d(x, {2, 2, 2}), doctest::Contains("kernel takes 1 or 2 values"));
  CHECK_THROWS_WITH(avg_pool2d(x, {2}, {}, {0}, false, true, 0), doctest::Contains("divisor_override"));
  CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {-1, 2}), doctest::Contains("adaptive_avg_pool2d: output_size must not be negative"));
  CHECK_THROWS_WITH(adaptive_max_pool2d(zeros({1, 0, 3, 3}), {2}), doctest::Contains("non-empty"));
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}, DType::i64), {2}), doctest::Contains("float"));
}
