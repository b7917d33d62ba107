// test_interpolate_device_path.cpp: the engine side of interpolate on a device, on any machine.
// A fake "cuda" backend keeps its memory on the host and implements resample2d / its backward as
// host loops that transcribe cuda/kernels/resample.cu (one "thread" per output cell forward, one
// per input cell backward, gathering over backend::invert_taps' lists). The test checks that
// interpolate routes device tensors there with the op's own tap tables for every mode, that
// autograd runs the backward through the device entry, and that the results equal the CPU op's
// (f64 and f32: the same weights, the same sums in the same order). The real
// kernels are checked on a GPU by tests/cuda/test_interpolate.cpp. (The forward is bit for bit;
// the backward within a few ulps, see compare_with_cpu.)
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/interpolate.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"

using namespace rv;

namespace {

using Taps = backend::DeviceBackend::ResampleTaps;

// As resample_forward_kernel, for one element type.
template <class T>
void forward_cells(T* out, const T* x, int64_t P, const Taps& th, const Taps& tw) {
  const int64_t H = th.in, W = tw.in, OH = th.out, OW = tw.out;
  for (int64_t e = 0; e < P * OH * OW; ++e) {
    const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
    const T* plane = x + p * H * W;
    auto row_value = [&](int64_t hr) -> T {
      const T* row = plane + hr * W;
      if (tw.identity) return row[ow];
      T r = row[tw.idx[size_t(ow * tw.K)]] * T(tw.w[size_t(ow * tw.K)]);
      for (int64_t j = 1; j < tw.n[size_t(ow)]; ++j)
        r += row[tw.idx[size_t(ow * tw.K + j)]] * T(tw.w[size_t(ow * tw.K + j)]);
      return r;
    };
    if (th.identity) {
      out[e] = row_value(oh);
      continue;
    }
    T acc = row_value(th.idx[size_t(oh * th.K)]) * T(th.w[size_t(oh * th.K)]);
    for (int64_t i = 1; i < th.n[size_t(oh)]; ++i)
      acc += row_value(th.idx[size_t(oh * th.K + i)]) * T(th.w[size_t(oh * th.K + i)]);
    out[e] = acc;
  }
}

// As resample_backward_kernel.
template <class T>
void backward_cells(T* dx, const T* g, int64_t P, const Taps& th, const Taps& tw) {
  const int64_t H = th.in, W = tw.in, OH = th.out, OW = tw.out;
  std::vector<int64_t> hoff, hout, woff, wout;
  std::vector<double> hwt, wwt;
  backend::invert_taps(th, hoff, hout, hwt);
  backend::invert_taps(tw, woff, wout, wwt);
  for (int64_t e = 0; e < P * H * W; ++e) {
    const int64_t w = e % W, h = (e / W) % H, p = e / (W * H);
    const T* gp = g + p * OH * OW;
    auto column_value = [&](int64_t oc) -> T {
      if (th.identity) return gp[h * OW + oc];
      T r = T(0);
      for (int64_t k = hoff[size_t(h)]; k < hoff[size_t(h) + 1]; ++k)
        r += gp[hout[size_t(k)] * OW + oc] * T(hwt[size_t(k)]);
      return r;
    };
    if (tw.identity) {
      dx[e] = column_value(w);
      continue;
    }
    T acc = T(0);
    for (int64_t m = woff[size_t(w)]; m < woff[size_t(w) + 1]; ++m)
      acc += column_value(wout[size_t(m)]) * T(wwt[size_t(m)]);
    dx[e] = acc;
  }
}

class FakeBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;

  Tensor resample2d(const Tensor& x, const Taps& th, const Taps& tw) override {
    ++calls["resample2d"];
    REQUIRE(x.dim() == 3);
    REQUIRE(x.size(1) == th.in);
    REQUIRE(x.size(2) == tw.in);
    REQUIRE(x.is_contiguous());
    Tensor out = empty({x.size(0), th.out, tw.out}, x.dtype(), x.device());
    if (x.dtype() == DType::f64)
      forward_cells(static_cast<double*>(out.device_data()), static_cast<const double*>(x.device_data()), x.size(0),
                    th, tw);
    else
      forward_cells(static_cast<float*>(out.device_data()), static_cast<const float*>(x.device_data()), x.size(0),
                    th, tw);
    return out;
  }
  Tensor resample2d_backward(const Tensor& g, const Taps& th, const Taps& tw) override {
    ++calls["resample2d_backward"];
    REQUIRE(g.dim() == 3);
    REQUIRE(g.size(1) == th.out);
    REQUIRE(g.size(2) == tw.out);
    Tensor dx = empty({g.size(0), th.in, tw.in}, g.dtype(), g.device());
    if (g.dtype() == DType::f64)
      backward_cells(static_cast<double*>(dx.device_data()), static_cast<const double*>(g.device_data()), g.size(0),
                     th, tw);
    else
      backward_cells(static_cast<float*>(dx.device_data()), static_cast<const float*>(g.device_data()), g.size(0),
                     th, tw);
    return dx;
  }
};

struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

// y = interpolate(x) and dx for a fixed gradient, on the CPU and on the fake device, in f64 and
// f32; `transposed` stores x on the device with its last two dims swapped (a strided view).
void compare_with_cpu(const InterpolateOptions& opt, const Shape& shape, bool transposed = false) {
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(opt.mode);
    CAPTURE(shape_str(shape));
    CAPTURE(dtype_name(dt));
    const Tensor x = test::test_tensor(shape, 3, dt);
    Tensor xc = x.detach().requires_grad_();
    Tensor xd = (transposed ? x.transpose(-1, -2).contiguous().cuda().transpose(-1, -2) : x.cuda())
                    .detach()
                    .requires_grad_();
    Tensor yc = interpolate(xc, opt), yd = interpolate(xd, opt);
    CHECK(yd.device() == cuda_device(0));
    RV_EXPECT_CLOSE(yd.cpu(), yc, .rtol = 0, .atol = 0);
    const Tensor g = test::test_tensor(yc.shape(), 77, dt);
    yc.backward(g);
    yd.backward(g.cuda());
    CHECK(xd.grad().device() == cuda_device(0));
    // The gather adds in the CPU scatter's order, but GCC contracts (a * b + c -> fma) the CPU's
    // vectorised loops and these scalar ones differently: a few ulps apart.
    const double tol = dt == DType::f64 ? 1e-14 : 1e-6;
    RV_EXPECT_CLOSE(xd.grad().cpu(), xc.grad(), .rtol = tol, .atol = tol);
  }
}

}  // namespace

TEST_CASE("interpolate on a device: every mode through the backend's tap tables, equal to the CPU") {
  FakeInstalled inst;
  compare_with_cpu({.size = {9, 13}, .mode = "nearest"}, {2, 3, 5, 6});
  compare_with_cpu({.size = {4, 3}, .mode = "nearest"}, {1, 2, 9, 7});
  compare_with_cpu({.size = {11, 7}, .mode = "bilinear"}, {2, 3, 5, 6});
  compare_with_cpu({.size = {11, 7}, .mode = "bilinear", .align_corners = true}, {2, 3, 5, 6});
  compare_with_cpu({.scale_factor = {4}, .mode = "bilinear"}, {1, 4, 3, 5});  // the UperNet upsampling
  compare_with_cpu({.size = {9, 9}, .mode = "bicubic"}, {1, 5, 7, 7});        // ViT position embeddings
  compare_with_cpu({.size = {5, 4}, .mode = "bicubic", .align_corners = true}, {2, 2, 8, 9});
  compare_with_cpu({.size = {4, 5}, .mode = "bilinear", .antialias = true}, {2, 3, 13, 17});
  compare_with_cpu({.size = {6, 3}, .mode = "bicubic", .antialias = true}, {1, 3, 14, 11});
  compare_with_cpu({.size = {17}, .mode = "linear"}, {2, 3, 6});
  compare_with_cpu({.size = {6, 11}, .mode = "bilinear"}, {2, 3, 6, 5});  // height unchanged: a copy pass
  compare_with_cpu({.size = {12, 5}, .mode = "bicubic"}, {1, 2, 7, 5});   // width unchanged
  compare_with_cpu({.size = {10, 8}, .mode = "bilinear"}, {2, 3, 7, 6}, /*transposed=*/true);
  compare_with_cpu({.size = {3, 3}, .mode = "bilinear"}, {0, 3, 7, 6});  // no planes
  CHECK(inst.fake.calls["resample2d"] == 28);
  CHECK(inst.fake.calls["resample2d_backward"] >= 26);  // empty inputs may skip the backward
}

TEST_CASE("interpolate on a device: dtypes without kernels are refused by name") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({1, 2, 4, 4}, 1, DType::f32).to(DType::bf16).cuda();
  CHECK_THROWS_WITH_AS(interpolate(x, {.size = {8, 8}, .mode = "bilinear"}),
                       doctest::Contains("interpolate: dtype bfloat16 is not implemented on cuda:0 yet"),
                       std::invalid_argument);
  CHECK(inst.fake.calls["resample2d"] == 0);
}

TEST_CASE("invert_taps lists each input's readers in ascending (output, tap) order") {
  Taps t;
  t.in = 3, t.out = 2, t.K = 3;
  t.n = {3, 2};
  t.idx = {0, 0, 2, 2, 1, 0};  // output 0 reads input 0 twice (a clamped border) and input 2
  t.w = {0.5, 0.25, 0.25, 0.75, 0.25, 0.0};
  std::vector<int64_t> off, out;
  std::vector<double> w;
  backend::invert_taps(t, off, out, w);
  CHECK(off == std::vector<int64_t>{0, 2, 3, 5});
  CHECK(out == std::vector<int64_t>{0, 0, 1, 0, 1});
  CHECK(w == std::vector<double>{0.5, 0.25, 0.25, 0.25, 0.75});
}
