// test_optim_backend.cpp: the engine side of the optimizer / reduction / unary backend entries
// (engine/backend.h's "optim, reductions, unary math" section), on any machine.
//
// A fake "cuda" backend keeps its memory on the host and records what AdamW, clip_grad_norm_,
// sum over dims and the unary ops hand it: that the optimizer sends every device parameter in
// ONE adamw_step call with the right per-parameter step counts and group hyper-parameters and
// device-resident state, that clip_grad_norm_ queues norm then scale and returns the norm, and
// that the ops pass their scalar arguments through. (The kernels themselves are checked against
// the CPU by tests/cuda/test_optim.cpp and test_reduce_unary.cpp on a GPU.)
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"

using namespace rv;

namespace {

// Host memory standing in for a device; records the optimizer entries it is called with.
class RecordingBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;
  // The last adamw_step's entries, and copies of their tensors (the pointers are valid only
  // during the call: the gradients are the optimizer's temporaries).
  std::vector<AdamWParam> adamw;
  std::vector<std::vector<Tensor>> adamw_tensors;  // param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq
  std::vector<Tensor> scaled;
  double max_norm = 0.0;
  std::vector<bool> mask;
  bool keepdim = false;
  UnaryOp last_op = UnaryOp::neg;
  double last_a = 0.0, last_b = 0.0;

  std::string device_name(int) const override { return "recording"; }

  void adamw_step(const std::vector<AdamWParam>& params) override {
    ++calls["adamw_step"];
    adamw = params;
    adamw_tensors.clear();
    for (const AdamWParam& e : params)
      adamw_tensors.push_back({*e.param, *e.grad, *e.exp_avg, *e.exp_avg_sq,
                               e.max_exp_avg_sq ? *e.max_exp_avg_sq : Tensor()});
  }
  Tensor l2_norm_multi(const std::vector<Tensor>& tensors) override {
    ++calls["l2_norm_multi"];
    double acc = 0.0;
    for (const Tensor& t : tensors) {
      const auto* p = static_cast<const float*>(t.device_data());
      for (int64_t i = 0; i < t.numel(); ++i) acc += double(p[i]) * double(p[i]);
    }
    Tensor norm = empty({}, DType::f64, tensors[0].device());
    *static_cast<double*>(norm.device_data()) = std::sqrt(acc);
    return norm;
  }
  void scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double mn) override {
    ++calls["scale_by_norm"];
    CHECK(calls["l2_norm_multi"] >= 1);  // queued after the norm it reads
    CHECK(norm.device() == tensors[0].device());
    scaled = tensors;
    max_norm = mn;
  }
  Tensor sum_dims(const Tensor& x, const std::vector<bool>& m, bool kd) override {
    ++calls["sum_dims"];
    mask = m;
    keepdim = kd;
    return zeros({1}, x.dtype(), x.device());
  }
  Tensor unary(UnaryOp op, const Tensor& x, double a, double b) override {
    ++calls[unary_op_name(op)];
    last_op = op, last_a = a, last_b = b;
    return zeros(x.shape(), x.dtype(), x.device());
  }
};

struct Installed {
  RecordingBackend rec;
  backend::DeviceBackend* previous = nullptr;
  Installed() { previous = backend::set_backend(DeviceType::cuda, &rec); }
  ~Installed() { backend::set_backend(DeviceType::cuda, previous); }
};

const Device kDev = cuda_device(0);

}  // namespace

TEST_CASE("AdamW with device parameters: one adamw_step call with every parameter, its step and group") {
  Installed inst;
  RecordingBackend& r = inst.rec;
  std::vector<Tensor> ps;
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 5}}) ps.push_back(test::test_tensor(s, 1).cuda().requires_grad_());
  optim::ParamGroup a({ps[0]}), b({ps[1], ps[2]});
  a.weight_decay = 0.0;
  a.lr = 0.5;
  optim::AdamW opt({a, b}, {.lr = 1e-2, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.1,
                            .amsgrad = true});
  for (Tensor& p : ps) p.set_grad(test::test_tensor(p.shape(), 2).cuda());
  opt.step();
  CHECK(r.calls["adamw_step"] == 1);
  REQUIRE(r.adamw.size() == 3);
  ps[1].set_grad(Tensor());  // no gradient: skipped, its step count stays
  opt.step();
  CHECK(r.calls["adamw_step"] == 2);
  REQUIRE(r.adamw.size() == 2);
  const auto& e0 = r.adamw[0];
  const auto& e1 = r.adamw[1];
  CHECK(r.adamw_tensors[0][0].same(ps[0]));
  CHECK(r.adamw_tensors[1][0].same(ps[2]));
  CHECK(e0.step == 2);
  CHECK(e1.step == 2);
  CHECK(e0.lr == 0.5);
  CHECK(e0.weight_decay == 0.0);
  CHECK(e1.lr == 1e-2);
  CHECK(e1.weight_decay == 0.1);
  CHECK(e1.beta1 == 0.8);
  CHECK(e1.beta2 == 0.9);
  CHECK(e1.eps == 1e-6);
  for (const auto& ts : r.adamw_tensors) {
    REQUIRE(ts[4].defined());  // amsgrad's max_exp_avg_sq
    for (size_t k = 1; k < ts.size(); ++k) {
      CAPTURE(k);
      CHECK(ts[k].device() == kDev);  // gradients and state live with the parameter
      CHECK(ts[k].shape() == ts[0].shape());
      CHECK(ts[k].is_contiguous());
    }
  }
  // The state_dict exports those device buffers.
  const optim::StateDict sd = opt.state_dict();
  CHECK(sd.at("state.0.exp_avg").device() == kDev);
}

TEST_CASE("clip_grad_norm_ with device gradients: norm, then scale on the device, value returned") {
  Installed inst;
  RecordingBackend& r = inst.rec;
  std::vector<Tensor> ps, hs;
  for (const Shape& s : {Shape{4}, Shape{2, 3}}) {
    const Tensor g = test::test_tensor(s, 3);
    ps.push_back(zeros(s, DType::f32, kDev).requires_grad_());
    ps.back().set_grad(g.cuda());
    hs.push_back(zeros(s).requires_grad_());
    hs.back().set_grad(g.clone());
  }
  const double got = optim::clip_grad_norm_(ps, 0.25);
  CHECK(got == doctest::Approx(optim::clip_grad_norm_(hs, 0.25)).epsilon(1e-12));
  CHECK(r.calls["l2_norm_multi"] == 1);
  CHECK(r.calls["scale_by_norm"] == 1);
  CHECK(r.max_norm == 0.25);
  CHECK(r.scaled.size() == 2);
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(ps, 1.0, 1.0), doctest::Contains("is not implemented on cuda:0"),
                       std::runtime_error);
  CHECK(optim::clip_grad_norm_(std::vector<Tensor>{}, 1.0) == 0.0);
}

TEST_CASE("sum / mean over some dims and the unary ops reach the backend with their arguments") {
  Installed inst;
  RecordingBackend& r = inst.rec;
  const Tensor d = zeros({2, 3, 4}, DType::f32, kDev);
  (void)sum(d, {0, 2}, /*keepdim=*/true);
  CHECK(r.calls["sum_dims"] == 1);
  CHECK(r.mask == std::vector<bool>{true, false, true});
  CHECK(r.keepdim);
  (void)clamp(d, -0.5, std::nullopt);
  CHECK(r.calls["clamp"] == 1);
  CHECK(r.last_a == -0.5);
  CHECK(std::isinf(r.last_b));
  (void)pow(d, 3.0);
  CHECK(r.last_op == backend::DeviceBackend::UnaryOp::pow_scalar);
  CHECK(r.last_a == 3.0);
  (void)div(2.0, d);
  CHECK(r.last_op == backend::DeviceBackend::UnaryOp::rdiv_scalar);
  CHECK(r.last_a == 2.0);
  (void)mean(d, {1});  // sum_dims, then a scalar multiply by 1/3
  CHECK(r.calls["sum_dims"] == 2);
  CHECK(r.last_op == backend::DeviceBackend::UnaryOp::mul_scalar);
  CHECK(r.last_a == doctest::Approx(1.0 / 3.0));
}
