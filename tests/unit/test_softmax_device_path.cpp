// test_softmax_device_path.cpp: the engine side of softmax / log_softmax / cross_entropy on a
// device, on any machine. A fake "cuda" backend keeps its memory on the host and implements the
// backend entries these ops use (strided copy, fill, softmax_last_dim(_backward),
// cross_entropy(_backward)) with plain loops; the test checks that the ops route device tensors
// to those entries with the right layout (another dim moved last, (B, K, d1, ...) logits turned
// into (R, K) rows), that autograd carries the gradients back through the moves on the device,
// that the mean's divisor travels from the forward to the backward, and the device-only errors.
// The real kernels are checked against the CPU by tests/cuda/test_softmax.cpp and
// test_cross_entropy.cpp on a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/loss.h"
#include "engine/ops/softmax.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);
using LR = backend::DeviceBackend::LossReduction;

// Host copies of a fake-device tensor's values (through copy_to_host) and back.
std::vector<double> values(const Tensor& t) { return t.cpu().to_double_vector(); }
Tensor on_device(const std::vector<double>& v, const Shape& shape, DType dt) {
  Tensor h = empty(shape, DType::f64);
  for (size_t i = 0; i < v.size(); ++i) h.data<double>()[i] = v[i];
  return h.to(dt).cuda();
}

class FakeBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;

  void copy_strided(const Tensor& dst, const Tensor& src) override {
    ++calls["copy_strided"];
    HostMemoryBackend::copy_strided(dst, src);
  }

  void fill(const Tensor& dst, double value) override {
    ++calls["fill"];
    REQUIRE(dst.is_contiguous());
    const Tensor v = scalar_tensor(value, dst.dtype());
    for (int64_t i = 0; i < dst.numel(); ++i)
      std::memcpy(static_cast<char*>(dst.device_data()) + i * dst.itemsize(), v.raw_data(), dst.itemsize());
  }

  Tensor softmax_last_dim(const Tensor& x, bool log) override {
    ++calls[log ? "log_softmax_last_dim" : "softmax_last_dim"];
    REQUIRE(x.is_contiguous());
    const Tensor h = x.cpu();
    return (log ? log_softmax(h, -1) : softmax(h, -1)).cuda();
  }

  Tensor softmax_last_dim_backward(const Tensor& dy, const Tensor& y, bool log) override {
    ++calls["softmax_last_dim_backward"];
    REQUIRE(dy.is_contiguous());
    REQUIRE(y.is_contiguous());
    REQUIRE(dy.shape() == y.shape());
    const std::vector<double> g = values(dy), yv = values(y);
    const int64_t len = y.dim() == 0 ? 1 : y.shape().back(), rows = len ? y.numel() / len : 0;
    std::vector<double> dx(g.size());
    for (int64_t r = 0; r < rows; ++r) {
      double a = 0;
      for (int64_t j = 0; j < len; ++j) a += log ? g[r * len + j] : g[r * len + j] * yv[r * len + j];
      for (int64_t j = 0; j < len; ++j) {
        const int64_t k = r * len + j;
        dx[k] = log ? g[k] - std::exp(yv[k]) * a : yv[k] * (g[k] - a);
      }
    }
    return on_device(dx, y.shape(), y.dtype());
  }

  int64_t last_ignore = 0;
  Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                       LossReduction red, Tensor& lse, Tensor& count) override {
    ++calls["cross_entropy"];
    REQUIRE(logits.dim() == 2);
    REQUIRE(logits.is_contiguous());
    REQUIRE(target.shape() == Shape{logits.shape()[0]});
    const int64_t R = logits.shape()[0], K = logits.shape()[1];
    const std::vector<double> x = values(logits), t = values(target);
    std::vector<double> l(R), loss(R);
    double total = 0, n = 0;
    for (int64_t r = 0; r < R; ++r) {
      double m = -INFINITY, s = 0, sx = 0;
      for (int64_t c = 0; c < K; ++c) m = std::max(m, x[r * K + c]);
      for (int64_t c = 0; c < K; ++c) {
        s += std::exp(x[r * K + c] - m);
        sx += x[r * K + c];
      }
      l[r] = m + std::log(s);
      const int64_t y = int64_t(t[r]);
      if (y == ignore_index) continue;
      loss[r] = (1 - smoothing) * (l[r] - x[r * K + y]) + smoothing / K * (K * l[r] - sx);
      total += loss[r];
      n += 1;
    }
    const DType mt = logits.dtype() == DType::f64 ? DType::f64 : DType::f32;  // the math dtype, as the real one
    lse = on_device(l, {R}, mt);
    if (red == LossReduction::none) return on_device(loss, {R}, logits.dtype());
    count = on_device({n}, {}, mt);
    return on_device({red == LossReduction::mean ? total / n : total}, {}, logits.dtype());
  }

  Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& count, int64_t ignore_index, double smoothing,
                                LossReduction red) override {
    ++calls["cross_entropy_backward"];
    const int64_t R = logits.shape()[0], K = logits.shape()[1];
    REQUIRE(grad.shape() == (red == LossReduction::none ? Shape{R} : Shape{}));
    const std::vector<double> x = values(logits), t = values(target), l = values(lse), g = values(grad);
    const double div = red == LossReduction::mean ? values(count)[0] : 1.0;
    std::vector<double> dx(size_t(R * K), 0.0);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t y = int64_t(t[r]);
      if (y == ignore_index) continue;
      const double gr = (red == LossReduction::none ? g[r] : g[0]) / div;
      for (int64_t c = 0; c < K; ++c)
        dx[r * K + c] = gr * (std::exp(x[r * K + c] - l[r]) - smoothing / K) - (c == y ? gr * (1 - smoothing) : 0);
    }
    return on_device(dx, logits.shape(), logits.dtype());
  }
};

struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

Tensor apply(bool log, const Tensor& x, int64_t dim) { return log ? log_softmax(x, dim) : softmax(x, dim); }

}  // namespace

TEST_CASE("softmax on a device: any dim reaches the last-dim entry; values and gradients as the CPU") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor x0 = test::test_tensor({3, 4, 5}, 61, DType::f64, -3.0, 3.0);
  const Tensor w = test::test_tensor({3, 4, 5}, 62, DType::f64);
  for (bool log : {false, true}) {
    for (int64_t dim : {0, 1, 2, -1}) {
      CAPTURE(log);
      CAPTURE(dim);
      f.calls.clear();
      Tensor xh = x0.clone().requires_grad_();
      Tensor yh = apply(log, xh, dim);
      yh.backward(w);
      Tensor xd = x0.cuda().requires_grad_();
      Tensor yd = apply(log, xd, dim);
      CHECK(yd.device() == kDev);
      CHECK(yd.is_contiguous());
      CHECK(f.calls[log ? "log_softmax_last_dim" : "softmax_last_dim"] == 1);
      RV_EXPECT_CLOSE(yd.cpu(), yh, .rtol = 1e-12, .atol = 1e-12);
      yd.backward(w.cuda());
      CHECK(f.calls["softmax_last_dim_backward"] == 1);
      REQUIRE(xd.grad().defined());
      CHECK(xd.grad().device() == kDev);
      RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = 1e-12, .atol = 1e-12);
    }
  }
  // A non-contiguous input and a 0-d tensor.
  const Tensor nc = test::test_noncontiguous({6, 7}, 63, DType::f64);
  RV_EXPECT_CLOSE(softmax(nc.cuda().t(), 1).cpu(), softmax(nc.t(), 1), .rtol = 1e-12, .atol = 1e-12);
  const Tensor s = scalar_tensor(0.25, DType::f64);
  CHECK(softmax(s.cuda(), 0).dim() == 0);
  CHECK(softmax(s.cuda(), 0).item() == 1.0);
}

TEST_CASE("cross_entropy on a device: (B, K) and (B, K, H, W) rows, reductions, the mean's divisor, gradients") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  for (const Shape& shape : {Shape{6, 5}, Shape{2, 4, 3, 2}}) {
    for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum}) {
      CAPTURE(shape_str(shape));
      CAPTURE(reduction_name(red));
      f.calls.clear();
      Shape pos = shape;
      pos.erase(pos.begin() + 1);
      Tensor t = empty(pos, DType::i64);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = i % 4 == 2 ? -100 : (i * 7) % shape[1];
      CrossEntropyOptions opt;
      opt.reduction = red;
      opt.label_smoothing = 0.1;
      const Tensor x0 = test::test_tensor(shape, 64, DType::f64, -3.0, 3.0);
      const Tensor gw = test::test_tensor(pos, 65, DType::f64, 0.5, 1.5);  // per-position gradient for none
      Tensor xh = x0.clone().requires_grad_();
      Tensor lh = cross_entropy(xh, t, opt);
      red == Reduction::none ? lh.backward(gw) : lh.backward();
      Tensor xd = x0.cuda().requires_grad_();
      Tensor ld = cross_entropy(xd, t.cuda(), opt);
      CHECK(f.calls["cross_entropy"] == 1);
      CHECK(ld.shape() == lh.shape());
      RV_EXPECT_CLOSE(ld.cpu(), lh, .rtol = 1e-12, .atol = 1e-12);
      red == Reduction::none ? ld.backward(gw.cuda()) : ld.backward();
      CHECK(f.calls["cross_entropy_backward"] == 1);
      REQUIRE(xd.grad().defined());
      RV_EXPECT_CLOSE(xd.grad().cpu(), xh.grad(), .rtol = 1e-12, .atol = 1e-12);
    }
  }
}

TEST_CASE("cross_entropy on a device: what has no kernel throws, naming the feature and the device") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({3, 5}, 66);
  const Tensor t = full({3}, 1.0, DType::i64);
  CrossEntropyOptions wopt;
  wopt.weight = ones({5});
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), t.cuda(), wopt),
                    "cross_entropy: class weights (the weight option) are not implemented on cuda:0 yet");
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), test::test_tensor({3, 5}, 67).cuda()),
                    "cross_entropy: soft (probability) targets are not implemented on cuda:0 yet");
  CHECK_THROWS_WITH(cross_entropy(x.cuda(), t),
                    "cross_entropy: logits on cuda:0 and target on cpu; move one with .to(device)");
  CHECK_THROWS_WITH(cross_entropy(x, t.cuda()),
                    "cross_entropy: logits on cpu and target on cuda:0; move one with .to(device)");
  CHECK(inst.fake.calls["cross_entropy"] == 0);
}
