// test_spatial_device_path.cpp: the engine side of index_select / embedding and the pooling ops
// and conv2d / conv_transpose2d on a device, on any machine. A fake "cuda" backend keeps its memory on the host and implements
// the entries these ops use with host loops that transcribe the CUDA kernels' index math
// (cuda/kernels/index.cu, pool.cu, im2col.cu, plus a plain GEMM: one "thread" per output element; the backwards as gathers
// over the host-built buckets / inverse span tables). The test checks that the ops route device
// tensors there with the right arguments, that autograd runs the backward through the device
// entries, and that the results equal the CPU ops bit for bit. The real kernels are checked on a
// GPU by tests/cuda/test_index.cpp and test_pool.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/conv.h"
#include "engine/ops/index.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"

using namespace rv;

namespace {

class FakeBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;

  // ---- as cuda/kernels/index.cu (f64 only here) ----
  Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) override {
    ++calls["index_select"];
    REQUIRE(index.device().is_cpu());
    return test::host_index_select_f64(x, dim, index);
  }
  Tensor index_select_backward(const Tensor& g, int64_t dim, const Tensor& index, const Shape& xs) override {
    ++calls["index_select_backward"];
    const int64_t K = index.numel(), S = xs[size_t(dim)];
    const int64_t* ip = index.data<int64_t>();
    std::vector<int64_t> off(static_cast<size_t>(S) + 1, 0);
    std::vector<int64_t> order(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) ++off[size_t(ip[k]) + 1];
    for (int64_t s = 0; s < S; ++s) off[size_t(s) + 1] += off[size_t(s)];
    std::vector<int64_t> next(off.begin(), off.end() - 1);
    for (int64_t k = 0; k < K; ++k) order[size_t(next[size_t(ip[k])]++)] = k;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= xs[size_t(d)];
    for (size_t d = size_t(dim) + 1; d < xs.size(); ++d) inner *= xs[d];
    const Tensor gc = g.contiguous();
    Tensor dx = empty(xs, g.dtype(), g.device());
    const double* gp = static_cast<const double*>(gc.device_data());
    double* dp = static_cast<double*>(dx.device_data());
    for (int64_t e = 0; e < dx.numel(); ++e) {
      const int64_t i = e % inner, t = e / inner, s = t % S, o = t / S;
      double acc = 0;
      for (int64_t j = off[size_t(s)]; j < off[size_t(s) + 1]; ++j) acc += gp[(o * K + order[size_t(j)]) * inner + i];
      dp[e] = acc;
    }
    return dx;
  }

  // ---- as cuda/kernels/pool.cu + the inverse tables of cuda/backend_spatial.cpp (f64) ----
  static double scale(double sum, PoolWindows::Mode m, const int64_t* a, const int64_t* b, int64_t divisor) {
    switch (m) {
      case PoolWindows::Mode::avg_adaptive: return sum / double(a[1] - a[0]) / double(b[1] - b[0]);
      case PoolWindows::Mode::avg_fixed: return sum / double(divisor);
      case PoolWindows::Mode::avg_padded: return sum / double(a[2] * b[2]);
      default: return sum / double((a[1] - a[0]) * (b[1] - b[0]));
    }
  }
  static std::vector<std::vector<int64_t>> invert(const std::vector<int64_t>& spans, int64_t in) {
    std::vector<std::vector<int64_t>> lists(static_cast<size_t>(in));
    for (size_t o = 0; o < spans.size() / 3; ++o)
      for (int64_t i = std::max<int64_t>(spans[3 * o], 0); i < std::min(spans[3 * o + 1], in); ++i)
        lists[size_t(i)].push_back(int64_t(o));
    return lists;
  }
  Tensor pool2d(const Tensor& x, const PoolWindows& w, Tensor* indices) override {
    ++calls["pool2d"];
    const int64_t OH = int64_t(w.hspan.size() / 3), OW = int64_t(w.wspan.size() / 3);
    const Tensor xc = x.contiguous();
    Tensor out = empty({w.P, OH, OW}, x.dtype(), x.device());
    Tensor idx = empty({w.P, OH, OW}, DType::i64, x.device());
    const double* xp = static_cast<const double*>(xc.device_data());
    double* op = static_cast<double*>(out.device_data());
    int64_t* ip = static_cast<int64_t*>(idx.device_data());
    for (int64_t e = 0; e < out.numel(); ++e) {
      const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
      const int64_t* a = w.hspan.data() + 3 * oh;
      const int64_t* b = w.wspan.data() + 3 * ow;
      const double* xq = xp + p * w.H * w.W;
      if (w.mode == PoolWindows::Mode::max) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t bi = a[0] * w.W + b[0];
        for (int64_t h = a[0]; h < a[1]; h += w.step_h)
          for (int64_t c = b[0]; c < b[1]; c += w.step_w)
            if (xq[h * w.W + c] > best || std::isnan(xq[h * w.W + c])) best = xq[h * w.W + c], bi = h * w.W + c;
        op[e] = best;
        ip[e] = bi;
      } else {
        double sum = 0;
        for (int64_t h = a[0]; h < a[1]; ++h)
          for (int64_t c = b[0]; c < b[1]; ++c) sum += xq[h * w.W + c];
        op[e] = scale(sum, w.mode, a, b, w.divisor);
      }
    }
    if (indices) *indices = idx;
    return out;
  }
  Tensor pool2d_backward(const Tensor& g, const PoolWindows& w, const Tensor& indices) override {
    ++calls["pool2d_backward"];
    const int64_t OH = int64_t(w.hspan.size() / 3), OW = int64_t(w.wspan.size() / 3);
    const auto hl = invert(w.hspan, w.H), wl = invert(w.wspan, w.W);
    const Tensor gc = g.contiguous();
    Tensor dx = empty({w.P, w.H, w.W}, g.dtype(), g.device());
    const double* gp = static_cast<const double*>(gc.device_data());
    const int64_t* ip = w.mode == PoolWindows::Mode::max ? static_cast<const int64_t*>(indices.device_data()) : nullptr;
    double* dp = static_cast<double*>(dx.device_data());
    for (int64_t e = 0; e < dx.numel(); ++e) {
      const int64_t c = e % w.W, h = (e / w.W) % w.H, p = e / (w.W * w.H);
      double acc = 0;
      for (int64_t oh : hl[size_t(h)])
        for (int64_t ow : wl[size_t(c)]) {
          const int64_t o = p * OH * OW + oh * OW + ow;
          if (ip) {
            if (ip[o] == h * w.W + c) acc += gp[o];
          } else {
            acc += scale(gp[o], w.mode, w.hspan.data() + 3 * oh, w.wspan.data() + 3 * ow, w.divisor);
          }
        }
      dp[e] = acc;
    }
    return dx;
  }

  // ---- the device GEMM (plain loops, any strides, f32) and column sum, for conv2d's products ----
  Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu) override {
    ++calls["gemm"];
    REQUIRE(!gelu);
    const int64_t batch = std::max(a.size(0), b.size(0)), M = a.size(1), K = a.size(2), N = b.size(2);
    Tensor out = empty({batch, M, N}, DType::f32, a.device());
    const float* ap = static_cast<const float*>(a.device_data());
    const float* bp = static_cast<const float*>(b.device_data());
    const float* biasp = bias.defined() ? static_cast<const float*>(bias.contiguous().device_data()) : nullptr;
    float* op = static_cast<float*>(out.device_data());
    const Shape& sa = a.strides();
    const Shape& sb = b.strides();
    for (int64_t t = 0; t < batch; ++t)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc += double(ap[(a.size(0) == 1 ? 0 : t) * sa[0] + m * sa[1] + k * sa[2]]) *
                   double(bp[(b.size(0) == 1 ? 0 : t) * sb[0] + k * sb[1] + n * sb[2]]);
          op[(t * M + m) * N + n] = float(acc + (biasp ? biasp[n] : 0.0));
        }
    return out;
  }
  Tensor column_sum(const Tensor& x) override {
    const Tensor xc = x.contiguous();
    Tensor out = empty({x.size(1)}, DType::f32, x.device());
    const float* xp = static_cast<const float*>(xc.device_data());
    float* op = static_cast<float*>(out.device_data());
    for (int64_t c = 0; c < x.size(1); ++c) {
      double acc = 0;
      for (int64_t r = 0; r < x.size(0); ++r) acc += xp[r * x.size(1) + c];
      op[c] = float(acc);
    }
    return out;
  }

  // ---- as cuda/kernels/im2col.cu (f32) ----
  Tensor im2col(const Tensor& x, const ConvWindow& w) override {
    ++calls["im2col"];
    const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = w.groups, Cg = C / G;
    const int64_t Kc = Cg * w.KH * w.KW;
    const Tensor xc = x.contiguous();
    Tensor cols = empty({G, B * w.Ho * w.Wo, Kc}, x.dtype(), x.device());
    const float* xp = static_cast<const float*>(xc.device_data());
    float* cp = static_cast<float*>(cols.device_data());
    for (int64_t e = 0; e < cols.numel(); ++e) {
      const int64_t kk = e % Kc;
      int64_t r = e / Kc;
      const int64_t ow = r % w.Wo;
      r /= w.Wo;
      const int64_t oh = r % w.Ho;
      r /= w.Ho;
      const int64_t b = r % B, grp = r / B;
      const int64_t kw = kk % w.KW, kh = (kk / w.KW) % w.KH, cg = kk / (w.KW * w.KH);
      const int64_t h = oh * w.stride_h - w.pad_h + kh * w.dil_h, c = ow * w.stride_w - w.pad_w + kw * w.dil_w;
      cp[e] = (h >= 0 && h < H && c >= 0 && c < W) ? xp[((b * C + grp * Cg + cg) * H + h) * W + c] : 0.f;
    }
    return cols;
  }
  Tensor col2im(const Tensor& cols, const Shape& xs, const ConvWindow& w) override {
    ++calls["col2im"];
    const int64_t B = xs[0], C = xs[1], H = xs[2], W = xs[3], G = w.groups, Cg = C / G, Kc = Cg * w.KH * w.KW;
    const Tensor cc = cols.contiguous();
    Tensor dx = empty(xs, cols.dtype(), cols.device());
    const float* cp = static_cast<const float*>(cc.device_data());
    float* dp = static_cast<float*>(dx.device_data());
    for (int64_t e = 0; e < dx.numel(); ++e) {
      const int64_t x = e % W, h = (e / W) % H, c = (e / (W * H)) % C, b = e / (W * H * C);
      const float* base = cp + ((c / Cg) * B + b) * w.Ho * w.Wo * Kc + (c % Cg) * w.KH * w.KW;
      float acc = 0;
      for (int64_t kh = 0; kh < w.KH; ++kh) {
        const int64_t th = h + w.pad_h - kh * w.dil_h;
        if (th < 0 || th % w.stride_h != 0 || th / w.stride_h >= w.Ho) continue;
        for (int64_t kw = 0; kw < w.KW; ++kw) {
          const int64_t tw = x + w.pad_w - kw * w.dil_w;
          if (tw < 0 || tw % w.stride_w != 0 || tw / w.stride_w >= w.Wo) continue;
          acc += base[((th / w.stride_h) * w.Wo + tw / w.stride_w) * Kc + kh * w.KW + kw];
        }
      }
      dp[e] = acc;
    }
    return dx;
  }
};

struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

// y = f(x) and dx for a fixed seed gradient, on the CPU and on the fake device.
template <class F>
void compare_with_cpu(F f, const Tensor& x) {
  Tensor xc = x.detach().requires_grad_(), xd = x.cuda().detach().requires_grad_();
  Tensor yc = f(xc), yd = f(xd);
  CHECK(yd.device() == cuda_device(0));
  RV_EXPECT_CLOSE(yd.cpu(), yc, .rtol = 0, .atol = 0);
  const Tensor g = test::test_tensor(yc.shape(), 77, DType::f64);
  yc.backward(g);
  yd.backward(g.cuda());
  CHECK(xd.grad().device() == cuda_device(0));
  RV_EXPECT_CLOSE(xd.grad().cpu(), xc.grad(), .rtol = 0, .atol = 0);
}

}  // namespace

TEST_CASE("index_select / embedding on a device call the backend with a checked host index") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({5, 7, 3}, 1, DType::f64);
  const Tensor idx = from_vector(std::vector<int64_t>{6, 0, 6, 2, 6}, {5});
  compare_with_cpu([&](const Tensor& t) { return index_select(t, 1, idx); }, x);
  compare_with_cpu([&](const Tensor& t) { return index_select(t, -1, from_vector(std::vector<int64_t>{2, 2, 1}, {3})); }, x);
  CHECK(inst.fake.calls["index_select"] == 2);
  CHECK(inst.fake.calls["index_select_backward"] == 2);
  const Tensor ids = from_vector(std::vector<int64_t>{1, 4, 1, 1, 0, 3}, {2, 3});
  compare_with_cpu([&](const Tensor& w) { return embedding(w, ids); }, test::test_tensor({5, 4}, 2, DType::f64));
  CHECK_THROWS_WITH(index_select(x.cuda(), 1, from_vector(std::vector<int64_t>{7}, {1})),
                    doctest::Contains("index 7 at position [0] is out of range"));
  CHECK_THROWS_WITH(gather(x.cuda(), 1, from_vector(std::vector<int64_t>{0}, {1, 1, 1})),
                    doctest::Contains("gather: not implemented on cuda:0 yet"));
}

TEST_CASE("pooling on a device: the CPU's windows reach the backend; values and gradients as the CPU") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({2, 3, 9, 8}, 3, DType::f64);
  compare_with_cpu([](const Tensor& t) { return max_pool2d(t, {3}, {2}, {1}); }, x);
  compare_with_cpu([](const Tensor& t) { return max_pool2d(t, {3, 2}, {1, 2}, {1, 0}, {2, 1}, true); }, x);
  compare_with_cpu([](const Tensor& t) { return avg_pool2d(t, {3}, {2}, {1}); }, x);
  compare_with_cpu([](const Tensor& t) { return avg_pool2d(t, {3}, {2}, {1}, true, false); }, x);
  compare_with_cpu([](const Tensor& t) { return avg_pool2d(t, {2}, {1}, {1}, false, true, 3); }, x);
  compare_with_cpu([](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 5}); }, x);
  compare_with_cpu([](const Tensor& t) { return adaptive_max_pool2d(t, {6}); }, x);
  compare_with_cpu([](const Tensor& t) { return adaptive_avg_pool2d(t, {11, 3}); }, x.select(0, 1));  // 3-D
  CHECK(inst.fake.calls["pool2d"] == 8);
  CHECK(inst.fake.calls["pool2d_backward"] == 8);
  auto [v, i] = max_pool2d_with_indices(x.cuda(), {2});
  auto [vc, ic] = max_pool2d_with_indices(x, {2});
  RV_EXPECT_CLOSE(i.cpu().to(DType::f64), ic.to(DType::f64), .rtol = 0, .atol = 0);
}

TEST_CASE("conv2d / conv_transpose2d on a device: im2col + GEMM + col2im give the CPU's values and gradients") {
  FakeInstalled inst;
  struct Case {
    Shape x, w;
    Pair stride, pad, dil;
    int64_t groups;
    bool bias, transpose;
  };
  // f32 products summed in other orders than the CPU's: rtol / atol 1e-5.
  const Case cases[] = {
      {{2, 4, 7, 6}, {3, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, true, false},   // padded 3x3 with bias
      {{1, 3, 9, 8}, {2, 3, 3, 2}, {2, 1}, {1, 2}, {2, 1}, 1, false, false},  // stride, dilation
      {{2, 4, 5, 5}, {6, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, false, false},  // 2 groups
      {{1, 4, 3, 4}, {4, 3, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 2, false, true},   // transposed, 2 groups
  };
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.x));
    CAPTURE(shape_str(c.w));
    const int64_t O = c.transpose ? c.w[1] * c.groups : c.w[0];
    const Tensor x = test::test_tensor(c.x, 1), w = test::test_tensor(c.w, 2);
    const Tensor b = c.bias ? test::test_tensor({O}, 3) : Tensor();
    Tensor xs[2], ws[2], bs[2], ys[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d ? cuda_device(0) : cpu_device();
      xs[d] = x.to(dev).detach().requires_grad_();
      ws[d] = w.to(dev).detach().requires_grad_();
      if (c.bias) bs[d] = b.to(dev).detach().requires_grad_();
      ys[d] = c.transpose ? conv_transpose2d(xs[d], ws[d], bs[d], c.stride, c.pad, {0, 0}, c.dil, c.groups)
                          : conv2d(xs[d], ws[d], bs[d], c.stride, c.pad, c.dil, c.groups);
      ys[d].backward(test::test_tensor(ys[0].shape(), 4).to(dev));
    }
    RV_EXPECT_CLOSE(ys[1].cpu(), ys[0], .rtol = 1e-5, .atol = 1e-5);
    RV_EXPECT_CLOSE(xs[1].grad().cpu(), xs[0].grad(), .rtol = 1e-5, .atol = 1e-5);
    RV_EXPECT_CLOSE(ws[1].grad().cpu(), ws[0].grad(), .rtol = 1e-5, .atol = 1e-5);
    if (c.bias) RV_EXPECT_CLOSE(bs[1].grad().cpu(), bs[0].grad(), .rtol = 1e-5, .atol = 1e-5);
  }
  CHECK(inst.fake.calls["im2col"] == 4);  // three conv forwards, one transposed backward
  CHECK(inst.fake.calls["col2im"] == 4);  // three conv backwards, one transposed forward
}
