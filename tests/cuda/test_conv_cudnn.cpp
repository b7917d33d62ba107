// test_conv_cudnn.cpp: conv2d and conv_transpose2d on cuda through cuDNN (ROPEVIT_CONV=cudnn,
// cuda/backend_conv.cpp) against the CPU ops and against our im2col + GEMM path, on odd shapes:
// stride, padding, dilation, groups (2 and depthwise), rectangular kernels and images, 1x1, the
// patch embedding, output padding, a non-contiguous input; forward and every gradient (dx,
// dweight, dbias); bf16; the same bits on every run; the switch. Skipped (exit 77) without a
// GPU; without cuDNN in the build each case says so and checks only the switch's error.
//
// Tolerances: f32 as tests/cuda/test_conv.cpp (rtol = atol = 1e-4: sums of up to ~2000 products
// in another order; cuDNN runs in FP32 FMA here, no TF32). bf16 storage (inputs rounded to bf16
// on both sides, cuDNN accumulating in f32 and rounding the output to bf16): 2 bf16 ulps, rtol
// 1.6e-2, atol 2e-2 against the f32 CPU op on the same rounded inputs.
#include <doctest/doctest.h>

#include <string>

#include "cuda/kernels/cudnn_conv.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/conv.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

using ConvImpl = backend::DeviceBackend::ConvImpl;

// Selects an implementation for the scope, then restores the previous one.
struct ConvImplScope {
  ConvImpl previous;
  explicit ConvImplScope(ConvImpl impl) : previous(backend::get(cuda_device(0)).conv_impl()) {
    backend::get(cuda_device(0)).set_conv_impl(impl);
  }
  ~ConvImplScope() { backend::get(cuda_device(0)).set_conv_impl(previous); }
  ConvImplScope(const ConvImplScope&) = delete;
  ConvImplScope& operator=(const ConvImplScope&) = delete;
};

// True when cuDNN is in; otherwise reports it and checks that asking for it fails clearly.
bool have_cudnn() {
  if (cuda::cudnn_built_in()) return true;
  MESSAGE("SKIPPED (cuDNN is not built in): " << cuda::cudnn_unavailable_reason());
  CHECK_THROWS_WITH(backend::get(cuda_device(0)).set_conv_impl(ConvImpl::cudnn), doctest::Contains("no cuDNN"));
  return false;
}

struct CudnnCase {
  Shape x, w;  // x (B, C, H, W); w (O, C/G, KH, KW) for conv2d, (C, O/G, KH, KW) for conv_transpose2d
  Pair stride{1, 1}, pad{0, 0}, dil{1, 1};
  int64_t groups = 1;
  bool bias = true;
  Pair out_pad{0, 0};  // conv_transpose2d only
};

struct CudnnRun {
  Tensor y, dx, dw, db;
};

CudnnRun run_case(const CudnnCase& c, bool transpose, Device device, DType dt = DType::f32,
                  bool noncontiguous_x = false) {
  // Non-contiguous: the same values stored (B, C, W, H) on the device and viewed transposed.
  Tensor x = noncontiguous_x ? test::test_tensor({c.x[0], c.x[1], c.x[3], c.x[2]}, 1).to(dt).to(device).transpose(2, 3)
                             : test::test_tensor(c.x, 1).to(dt).to(device);
  if (noncontiguous_x) REQUIRE(!x.is_contiguous());
  x = x.detach().requires_grad_();
  Tensor w = test::test_tensor(c.w, 2).to(dt).to(device).detach().requires_grad_();
  const int64_t O = transpose ? c.w[1] * c.groups : c.w[0];
  Tensor b = c.bias ? test::test_tensor({O}, 3).to(dt).to(device).detach().requires_grad_() : Tensor();
  Tensor y = transpose ? conv_transpose2d(x, w, b, c.stride, c.pad, c.out_pad, c.dil, c.groups)
                       : conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  y.backward(test::test_tensor(y.shape(), 4).to(dt).to(device));
  CudnnRun r{y.cpu().to(DType::f32), x.grad().cpu().to(DType::f32), w.grad().cpu().to(DType::f32), Tensor()};
  if (c.bias) r.db = b.grad().cpu().to(DType::f32);
  return r;
}

void expect_close(const CudnnRun& got, const CudnnRun& want, bool bias, double rtol, double atol) {
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = rtol, .atol = atol);
  RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = rtol, .atol = atol);
  RV_EXPECT_CLOSE(got.dw, want.dw, .rtol = rtol, .atol = atol);
  if (bias) RV_EXPECT_CLOSE(got.db, want.db, .rtol = rtol, .atol = atol);
}

// cuDNN against the CPU and against our device path, f32.
void compare_three_ways(const CudnnCase& c, bool transpose, bool noncontiguous_x = false) {
  CAPTURE(shape_str(c.x));
  CAPTURE(shape_str(c.w));
  CAPTURE(c.groups);
  CAPTURE(transpose);
  const CudnnRun cpu = run_case(c, transpose, cpu_device(), DType::f32, noncontiguous_x);
  CudnnRun ours, theirs;
  {
    ConvImplScope s(ConvImpl::ours);
    ours = run_case(c, transpose, cuda_device(0), DType::f32, noncontiguous_x);
  }
  {
    ConvImplScope s(ConvImpl::cudnn);
    theirs = run_case(c, transpose, cuda_device(0), DType::f32, noncontiguous_x);
  }
  expect_close(theirs, cpu, c.bias, 1e-4, 1e-4);
  expect_close(theirs, ours, c.bias, 1e-4, 1e-4);
}

}  // namespace

TEST_CASE("conv2d by cuDNN equals the CPU and our path: padding, stride, dilation, groups, all gradients") {
  if (!have_cudnn()) return;
  MESSAGE("cuDNN " << cuda::cudnn_version());
  const CudnnCase cases[] = {
      {{2, 16, 13, 11}, {8, 16, 3, 3}, {1, 1}, {1, 1}},               // UperNet's 3x3, same size
      {{1, 7, 9, 9}, {5, 7, 3, 3}, {2, 2}, {1, 1}},                   // stride 2 (9 -> 5)
      {{2, 3, 17, 10}, {4, 3, 3, 3}, {1, 2}, {2, 1}, {2, 3}},         // dilation, uneven stride / pad
      {{2, 8, 7, 7}, {6, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 2},        // 2 groups
      {{1, 6, 8, 5}, {6, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 6, false}, // depthwise, no bias
      {{3, 12, 6, 4}, {9, 12, 1, 1}},                                 // 1x1 (UperNet's lateral convs)
      {{1, 2, 5, 6}, {3, 2, 2, 5}, {1, 1}, {0, 2}},                   // rectangular kernel
      {{2, 3, 32, 32}, {12, 3, 8, 8}, {8, 8}},                        // kernel == stride: the patch embedding
      {{1, 1, 1, 1}, {1, 1, 1, 1}},                                   // everything of size 1
      {{2, 4, 4, 4}, {3, 4, 5, 5}, {1, 1}, {2, 2}},                   // kernel larger than the image
  };
  for (const CudnnCase& c : cases) compare_three_ways(c, false);
  compare_three_ways({{2, 5, 9, 8}, {4, 5, 3, 3}, {1, 1}, {1, 1}}, false, /*noncontiguous_x=*/true);
}

TEST_CASE("conv_transpose2d by cuDNN equals the CPU and our path: stride, padding, output padding, groups") {
  if (!have_cudnn()) return;
  compare_three_ways({{2, 6, 5, 4}, {6, 3, 2, 2}, {2, 2}}, true);  // FPN-style 2x upsampling
  CudnnCase c{{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 2}, {1, 1}};
  c.out_pad = {1, 0};
  compare_three_ways(c, true);
  compare_three_ways({{2, 6, 4, 3}, {6, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 3, false}, true);  // 3 groups, no bias
  CudnnCase d{{1, 2, 4, 5}, {2, 3, 3, 2}, {2, 1}, {1, 0}, {2, 2}};  // dilation, rectangular
  d.out_pad = {1, 0};
  compare_three_ways(d, true);
  CudnnCase e{{1, 3, 4, 5}, {3, 2, 3, 3}, {1, 1}, {1, 1}, {2, 2}};  // output_padding == stride: our path
  e.out_pad = {1, 1};
  compare_three_ways(e, true);
}

TEST_CASE("conv2d by cuDNN in bf16 is within bf16 rounding of the f32 CPU op on the same inputs") {
  if (!have_cudnn()) return;
  ConvImplScope s(ConvImpl::cudnn);
  const CudnnCase cases[] = {
      {{2, 16, 9, 7}, {8, 16, 3, 3}, {1, 1}, {1, 1}},
      {{2, 8, 6, 6}, {6, 4, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 2},
  };
  for (const CudnnCase& c : cases) {
    CAPTURE(shape_str(c.x));
    // The CPU reference in f32 on inputs already rounded to bf16 (run_case rounds them, then widens).
    const CudnnRun got = run_case(c, false, cuda_device(0), DType::bf16);
    const CudnnRun want = run_case(c, false, cpu_device(), DType::bf16);
    expect_close(got, want, c.bias, 1.6e-2, 2e-2);
  }
}

TEST_CASE("conv2d by cuDNN: the same bits on every run (deterministic algorithms only)") {
  if (!have_cudnn()) return;
  ConvImplScope s(ConvImpl::cudnn);
  const CudnnCase c{{4, 32, 15, 15}, {32, 32, 3, 3}, {2, 2}, {1, 1}};
  const CudnnRun a = run_case(c, false, cuda_device(0)), b = run_case(c, false, cuda_device(0));
  expect_close(a, b, true, 0, 0);
}

TEST_CASE("conv2d by cuDNN: empty batches and clear errors") {
  if (!have_cudnn()) return;
  ConvImplScope s(ConvImpl::cudnn);
  const Tensor x0 = empty({0, 3, 5, 5}, DType::f32, cuda_device(0));
  const Tensor w = test::test_tensor({4, 3, 3, 3}, 2).cuda().requires_grad_();
  Tensor y = conv2d(x0, w, Tensor(), {1, 1}, {1, 1});
  CHECK(y.shape() == Shape{0, 4, 5, 5});
  sum(y).backward();
  RV_EXPECT_CLOSE(w.grad().cpu(), zeros({4, 3, 3, 3}), .rtol = 0, .atol = 0);
  const Tensor xi = test::test_tensor({1, 3, 5, 5}, 1).to(DType::i32).cuda();
  CHECK_THROWS_WITH(conv2d(xi, w.detach().to(DType::i32)),
                    doctest::Contains("dtype int32 is not implemented on cuda:0"));
}
