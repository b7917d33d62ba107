// test_conv.cpp: conv2d and conv_transpose2d on cuda (im2col + the device GEMM + col2im) against
// the CPU ops: UperNet's 3x3 padded convs, strides, dilation, groups (2 and depthwise), 1x1,
// rectangular kernels, odd image sizes, a non-contiguous input, with and without bias; forward
// and every gradient through autograd (dx, dweight, dbias). Skipped (exit 77) without a GPU.
//
// Tolerances (f32 only: the device GEMM is f32): both sides sum C/G*KH*KW products per output
// (and B*Ho*Wo per weight gradient) in different orders, so rtol 1e-4, atol 1e-4 for values of
// size ~1 (the longest sums here have ~2000 terms: f32 rounding error ~ sqrt(n) * 6e-8 * |terms|).
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

struct Cfg {
  Shape x, w;  // x (B, C, H, W); w (O, C/G, KH, KW) for conv2d, (C, O/G, KH, KW) for conv_transpose2d
  Pair stride{1, 1}, pad{0, 0}, dil{1, 1};
  int64_t groups = 1;
  bool bias = true;
  Pair out_pad{0, 0};  // conv_transpose2d only
};

struct Result {
  Tensor y, dx, dw, db;
};

Result run(const Cfg& c, bool transpose, Device device, bool noncontiguous_x = false) {
  // Non-contiguous: the same values stored (B, C, W, H) on the device and viewed transposed.
  Tensor x = noncontiguous_x ? test::test_tensor({c.x[0], c.x[1], c.x[3], c.x[2]}, 1).to(device).transpose(2, 3)
                             : test::test_tensor(c.x, 1).to(device);
  if (noncontiguous_x) REQUIRE(!x.is_contiguous());
  x = x.detach().requires_grad_();
  Tensor w = test::test_tensor(c.w, 2).to(device).detach().requires_grad_();
  const int64_t O = transpose ? c.w[1] * c.groups : c.w[0];
  Tensor b = c.bias ? test::test_tensor({O}, 3).to(device).detach().requires_grad_() : Tensor();
  Tensor y = transpose ? conv_transpose2d(x, w, b, c.stride, c.pad, c.out_pad, c.dil, c.groups)
                       : conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  const Tensor gy = test::test_tensor(y.shape(), 4);
  y.backward(gy.to(device));
  Result r{y.cpu(), x.grad().cpu(), w.grad().cpu(), Tensor()};
  if (c.bias) r.db = b.grad().cpu();
  return r;
}

void compare(const Cfg& c, bool transpose, bool noncontiguous_x = false) {
  CAPTURE(shape_str(c.x));
  CAPTURE(shape_str(c.w));
  CAPTURE(c.groups);
  CAPTURE(transpose);
  const Result want = run(c, transpose, cpu_device(), noncontiguous_x);
  const Result got = run(c, transpose, cuda_device(0), noncontiguous_x);
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = 1e-4, .atol = 1e-4);
  RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 1e-4, .atol = 1e-4);
  RV_EXPECT_CLOSE(got.dw, want.dw, .rtol = 1e-4, .atol = 1e-4);
  if (c.bias) RV_EXPECT_CLOSE(got.db, want.db, .rtol = 1e-4, .atol = 1e-4);
}

}  // namespace

TEST_CASE("conv2d on cuda equals the CPU: padding, stride, dilation, groups, forward and backward") {
  const Cfg cases[] = {
      {{2, 16, 13, 11}, {8, 16, 3, 3}, {1, 1}, {1, 1}},                 // UperNet's 3x3, same size
      {{1, 7, 9, 9}, {5, 7, 3, 3}, {2, 2}, {1, 1}},                     // stride 2 (9 -> 5)
      {{2, 3, 17, 10}, {4, 3, 3, 3}, {1, 2}, {2, 1}, {2, 3}},           // dilation, uneven stride / pad
      {{2, 8, 7, 7}, {6, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 2},          // 2 groups
      {{1, 6, 8, 5}, {6, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 6, false},   // depthwise, no bias
      {{3, 12, 6, 4}, {9, 12, 1, 1}},                                   // 1x1 (UperNet's lateral convs)
      {{1, 2, 5, 6}, {3, 2, 2, 5}, {1, 1}, {0, 2}},                     // rectangular kernel
      {{1, 1, 1, 1}, {1, 1, 1, 1}},                                     // everything of size 1
      {{2, 4, 4, 4}, {3, 4, 5, 5}, {1, 1}, {2, 2}},                     // kernel larger than the image
  };
  for (const Cfg& c : cases) compare(c, false);
}

TEST_CASE("conv2d on cuda reads a non-contiguous input; the patch embedding still matches") {
  compare({{2, 5, 9, 8}, {4, 5, 3, 3}, {1, 1}, {1, 1}}, false, true);
  compare({{2, 3, 32, 32}, {12, 3, 8, 8}, {8, 8}}, false);  // kernel == stride: the patch path
}

TEST_CASE("conv_transpose2d on cuda equals the CPU: stride, padding, output padding, groups") {
  Cfg up{{2, 6, 5, 4}, {6, 3, 2, 2}, {2, 2}};  // FPN-style 2x upsampling
  compare(up, true);
  Cfg c{{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 2}, {1, 1}};
  c.out_pad = {1, 0};
  compare(c, true);
  Cfg g{{2, 6, 4, 3}, {6, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 3, false};  // 3 groups, no bias
  compare(g, true);
}

TEST_CASE("conv2d backward on cuda is deterministic: the same bits on every run") {
  const Cfg c{{2, 8, 15, 15}, {8, 8, 3, 3}, {2, 2}, {1, 1}};
  const Result a = run(c, false, cuda_device(0)), b = run(c, false, cuda_device(0));
  RV_EXPECT_CLOSE(a.y, b.y, .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(a.dx, b.dx, .rtol = 0, .atol = 0);
  RV_EXPECT_CLOSE(a.dw, b.dw, .rtol = 0, .atol = 0);
}

TEST_CASE("conv2d on cuda: clear errors for other dtypes and mixed devices") {
  const Tensor x = test::test_tensor({1, 2, 5, 5}, 1);
  const Tensor w = test::test_tensor({3, 2, 3, 3}, 2);
  CHECK_THROWS_WITH(conv2d(x.to(DType::bf16).cuda(), w.to(DType::bf16).cuda()),
                    doctest::Contains("dtype bfloat16 is not implemented on cuda:0"));
  CHECK_THROWS_WITH(conv2d(x.cuda(), w), doctest::Contains("move it with .to(device)"));
}
