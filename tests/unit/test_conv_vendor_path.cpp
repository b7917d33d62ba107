// test_conv_vendor_path.cpp: the engine side of the cuDNN convolution path (ROPEVIT_CONV=cudnn),
// on any machine. A stand-in "cuda" backend (tests/support/cpu_mirror_backend.h) answers the
// three vendor entries of engine/backend.h (conv2d_forward, conv2d_input_grad, conv2d_weight_grad)
// with the CPU conv2d and its autograd on the same bytes, as cuDNN answers them on a GPU. The test
// checks what engine/ops/conv_device.cpp makes of them: conv2d and conv_transpose2d (which is the
// adjoint conv's input gradient: its own gradients swap the roles) give the CPU ops' values and
// gradients for x, weight and bias, over strides, padding, dilation, groups, output padding,
// rectangular kernels, the patch embedding, a non-contiguous input and mixed dtypes; only the
// entries a backward needs are called; im2col is never used; and the switch. The real cuDNN
// calls are checked on a GPU by tests/cuda/test_conv_cudnn.cpp.
#include <doctest/doctest.h>

#include <iterator>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/conv.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/cpu_mirror_backend.h"

using namespace rv;

namespace {

using ConvWindow = backend::DeviceBackend::ConvWindow;
using ConvImpl = backend::DeviceBackend::ConvImpl;

// The CPU mirror plus a "vendor library" that computes each entry with the CPU conv2d.
class VendorConvMirror final : public test::CpuMirrorBackend {
 public:
  ConvImpl impl = ConvImpl::cudnn;
  void set_conv_impl(ConvImpl i) override { impl = i; }
  ConvImpl conv_impl() const override { return impl; }

  static Tensor cpu_conv(const Tensor& x, const Tensor& w, const ConvWindow& win) {
    return conv2d(x, w, Tensor(), {win.stride_h, win.stride_w}, {win.pad_h, win.pad_w}, {win.dil_h, win.dil_w},
                  win.groups);
  }
  Tensor conv2d_forward(const Tensor& x, const Tensor& w, const ConvWindow& win) override {
    ++calls["conv2d_forward"];
    CHECK(x.dtype() == w.dtype());
    autograd::NoGradGuard ng;
    const Tensor y = cpu_conv(host(x), host(w), win);
    CHECK(y.size(2) == win.Ho);
    CHECK(y.size(3) == win.Wo);
    return back(y);
  }
  Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const Shape& x_shape, const ConvWindow& win) override {
    ++calls["conv2d_input_grad"];
    CHECK(dy.dtype() == w.dtype());
    GradOn on;
    Tensor xl = zeros(x_shape, dy.dtype()).requires_grad_();
    cpu_conv(xl, host(w), win).backward(host(dy));
    return grad_of(xl);
  }
  Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const Shape& w_shape, const ConvWindow& win) override {
    ++calls["conv2d_weight_grad"];
    CHECK(x.dtype() == dy.dtype());
    GradOn on;
    Tensor wl = zeros(w_shape, x.dtype()).requires_grad_();
    cpu_conv(host(x), wl, win).backward(host(dy));
    return grad_of(wl);
  }
};

struct VendorInstalled {
  VendorConvMirror fake;
  backend::DeviceBackend* previous = nullptr;
  VendorInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~VendorInstalled() { backend::set_backend(DeviceType::cuda, previous); }
  VendorInstalled(const VendorInstalled&) = delete;
  VendorInstalled& operator=(const VendorInstalled&) = delete;
};

struct ConvCase {
  Shape x, w;  // x (B, C, H, W); w (O, C/G, KH, KW) for conv2d, (C, O/G, KH, KW) for conv_transpose2d
  Pair stride{1, 1}, pad{0, 0}, dil{1, 1};
  int64_t groups = 1;
  bool bias = true;
  Pair out_pad{0, 0};  // conv_transpose2d only
};

struct ConvRun {
  Tensor y, dx, dw, db;
};

// x in `xdt`, the weight and bias in `wdt`. Non-contiguous: x stored (B, C, W, H) on `device` and
// viewed transposed (the same on both devices, so the values agree).
ConvRun run_conv(const ConvCase& c, bool transpose, Device device, bool noncontiguous_x = false,
                 DType xdt = DType::f64, DType wdt = DType::f64) {
  Tensor x = noncontiguous_x ? test::test_tensor({c.x[0], c.x[1], c.x[3], c.x[2]}, 1, xdt).to(device).transpose(2, 3)
                             : test::test_tensor(c.x, 1, xdt).to(device);
  if (noncontiguous_x) REQUIRE(!x.is_contiguous());
  x = x.detach().requires_grad_();
  Tensor w = test::test_tensor(c.w, 2, wdt).to(device).detach().requires_grad_();
  const int64_t O = transpose ? c.w[1] * c.groups : c.w[0];
  Tensor b = c.bias ? test::test_tensor({O}, 3, wdt).to(device).detach().requires_grad_() : Tensor();
  Tensor y = transpose ? conv_transpose2d(x, w, b, c.stride, c.pad, c.out_pad, c.dil, c.groups)
                       : conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  CHECK(y.device() == device);
  y.backward(test::test_tensor(y.shape(), 4, y.dtype()).to(device));
  CHECK(x.grad().device() == device);
  ConvRun r{y.cpu(), x.grad().cpu(), w.grad().cpu(), Tensor()};
  if (c.bias) r.db = b.grad().cpu();
  return r;
}

// f64 by default: the stand-in computes each entry with the CPU's own f64 conv, so only the
// order of a few additions (the bias) can differ. f32 (the im2col path's GEMM is f32 only): 1e-5.
void expect_same_as_cpu(const ConvCase& c, bool transpose, bool noncontiguous_x = false, DType dt = DType::f64) {
  CAPTURE(shape_str(c.x));
  CAPTURE(shape_str(c.w));
  CAPTURE(c.groups);
  CAPTURE(transpose);
  const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
  const ConvRun want = run_conv(c, transpose, cpu_device(), noncontiguous_x, dt, dt);
  const ConvRun got = run_conv(c, transpose, cuda_device(0), noncontiguous_x, dt, dt);
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = tol, .atol = tol);
  RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = tol, .atol = tol);
  RV_EXPECT_CLOSE(got.dw, want.dw, .rtol = tol, .atol = tol);
  if (c.bias) RV_EXPECT_CLOSE(got.db, want.db, .rtol = tol, .atol = tol);
}

}  // namespace

TEST_CASE("conv2d through the vendor entries equals the CPU op: every window, every gradient") {
  VendorInstalled inst;
  const ConvCase cases[] = {
      {{2, 6, 9, 7}, {4, 6, 3, 3}, {1, 1}, {1, 1}},                   // UperNet's 3x3, same size
      {{1, 5, 9, 9}, {3, 5, 3, 3}, {2, 2}, {1, 1}},                   // stride 2
      {{2, 3, 11, 8}, {4, 3, 3, 3}, {1, 2}, {2, 1}, {2, 3}},          // dilation, uneven stride / pad
      {{2, 8, 6, 5}, {6, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 2},        // 2 groups
      {{1, 6, 7, 5}, {6, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 6, false}, // depthwise, no bias
      {{1, 2, 5, 6}, {3, 2, 2, 5}, {1, 1}, {0, 2}},                   // rectangular kernel
      {{2, 3, 16, 16}, {5, 3, 4, 4}, {4, 4}},                         // kernel == stride: the patch embedding
      {{1, 1, 1, 1}, {1, 1, 1, 1}},                                   // everything of size 1
  };
  for (const ConvCase& c : cases) expect_same_as_cpu(c, false);
  const int64_t n = std::size(cases);
  CHECK(inst.fake.calls["conv2d_forward"] == n);
  CHECK(inst.fake.calls["conv2d_input_grad"] == n);
  CHECK(inst.fake.calls["conv2d_weight_grad"] == n);
  CHECK(inst.fake.calls["im2col"] == 0);
  CHECK(inst.fake.calls["col2im"] == 0);
  CHECK(inst.fake.calls["gemm"] == 0);
}

TEST_CASE("conv2d through the vendor entries: a non-contiguous input, mixed dtypes, only the needed gradients") {
  VendorInstalled inst;
  expect_same_as_cpu({{2, 5, 8, 7}, {4, 5, 3, 3}, {1, 1}, {1, 1}}, false, /*noncontiguous_x=*/true);

  // f32 x with an f64 weight: promoted to f64 as on the CPU; x's gradient comes back in f32.
  const ConvCase c{{1, 3, 6, 6}, {2, 3, 3, 3}, {1, 1}, {1, 1}};
  const ConvRun want = run_conv(c, false, cpu_device(), false, DType::f32);
  const ConvRun got = run_conv(c, false, cuda_device(0), false, DType::f32);
  CHECK(got.y.dtype() == DType::f64);
  CHECK(got.dx.dtype() == DType::f32);
  RV_EXPECT_CLOSE(got.y, want.y, .rtol = 1e-12, .atol = 1e-12);
  RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = 1e-6, .atol = 1e-6);
  RV_EXPECT_CLOSE(got.dw, want.dw, .rtol = 1e-12, .atol = 1e-12);

  // Only the weight wants a gradient: the input-gradient entry is not called.
  inst.fake.calls.clear();
  const Tensor x = test::test_tensor({1, 2, 5, 5}, 1, DType::f64).cuda();
  Tensor w = test::test_tensor({3, 2, 3, 3}, 2, DType::f64).cuda().requires_grad_();
  sum(conv2d(x, w)).backward();
  CHECK(inst.fake.calls["conv2d_weight_grad"] == 1);
  CHECK(inst.fake.calls["conv2d_input_grad"] == 0);
  // No gradient at all: the forward only, nothing recorded.
  {
    autograd::NoGradGuard ng;
    inst.fake.calls.clear();
    const Tensor y = conv2d(x, w);
    CHECK_FALSE(y.requires_grad());
    CHECK(inst.fake.calls["conv2d_forward"] == 1);
  }
}

TEST_CASE("conv_transpose2d through the vendor entries equals the CPU op (the adjoint's roles swapped)") {
  VendorInstalled inst;
  ConvCase up{{2, 6, 5, 4}, {6, 3, 2, 2}, {2, 2}};  // FPN-style 2x upsampling
  expect_same_as_cpu(up, true);
  ConvCase c{{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 2}, {1, 1}};
  c.out_pad = {1, 0};  // output padding: the adjoint conv's input is larger than its window needs
  expect_same_as_cpu(c, true);
  ConvCase g{{2, 6, 4, 3}, {6, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 3, false};  // 3 groups, no bias
  expect_same_as_cpu(g, true);
  ConvCase d{{1, 2, 4, 5}, {2, 3, 3, 2}, {2, 1}, {1, 0}, {2, 2}};  // dilation, rectangular
  d.out_pad = {1, 0};
  expect_same_as_cpu(d, true);
  // Each transpose: its forward is the input gradient, its dx the forward, its dw the weight gradient.
  CHECK(inst.fake.calls["conv2d_input_grad"] == 4);
  CHECK(inst.fake.calls["conv2d_forward"] == 4);
  CHECK(inst.fake.calls["conv2d_weight_grad"] == 4);
  CHECK(inst.fake.calls["col2im"] == 0);

  // output_padding 1 with stride 1 (allowed by dilation 2): no conv2d maps that output back onto
  // the input, so it stays on our path (f32: our GEMM's dtype), still equal to the CPU.
  inst.fake.calls.clear();
  ConvCase e{{1, 3, 4, 5}, {3, 2, 3, 3}, {1, 1}, {1, 1}, {2, 2}};
  e.out_pad = {1, 1};
  expect_same_as_cpu(e, true, false, DType::f32);
  CHECK(inst.fake.calls["conv2d_input_grad"] == 0);
  CHECK(inst.fake.calls["col2im"] >= 1);
}

TEST_CASE("the convolution switch: ours stays on im2col + GEMM, the backend's default refuses a vendor path") {
  VendorInstalled inst;
  inst.fake.set_conv_impl(ConvImpl::ours);
  expect_same_as_cpu({{1, 3, 6, 5}, {2, 3, 3, 3}, {1, 1}, {1, 1}}, false, false, DType::f32);
  CHECK(inst.fake.calls["conv2d_forward"] == 0);
  CHECK(inst.fake.calls["im2col"] >= 1);
  // A backend without a vendor library (the interface's defaults) says so.
  test::HostMemoryBackend plain;
  CHECK(plain.conv_impl() == ConvImpl::ours);
  CHECK_NOTHROW(plain.set_conv_impl(ConvImpl::ours));
  CHECK_THROWS_WITH(plain.set_conv_impl(ConvImpl::cudnn), doctest::Contains("no vendor convolution library"));
  const Tensor t = empty({1, 1, 2, 2}, DType::f32, cpu_device());
  CHECK_THROWS_WITH(plain.conv2d_forward(t, t, ConvWindow{}), doctest::Contains("not implemented"));
}
