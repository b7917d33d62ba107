// test_index_device_path.cpp: the engine side of gather, scatter_add, index_add and one_hot on a
// device, on any machine. A fake "cuda" backend keeps its memory on the host and implements
// `take` and `scatter_add_flat` as host loops that transcribe cuda/kernels/take.cu (one "thread"
// per output element; the scatter over backend::bucket_by_target's buckets). The test checks
// that the ops turn their index into the right offsets, that autograd runs each backward through
// the device entries, and that values and gradients equal the CPU ops bit for bit (the same
// additions in the same order). The real kernels are checked on a GPU by
// tests/cuda/test_gather_scatter.cpp.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/index.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"

using namespace rv;

namespace {

class FakeBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;

  // As take_kernel: raw elements moved by offset.
  Tensor take(const Tensor& src, const Tensor& offsets) override {
    ++calls["take"];
    REQUIRE(offsets.device().is_cpu());
    const Tensor sc = src.contiguous();
    Tensor out = empty({offsets.numel()}, src.dtype(), src.device());
    const size_t item = src.itemsize();
    const int64_t* off = offsets.data<int64_t>();
    for (int64_t i = 0; i < offsets.numel(); ++i)
      std::memcpy(static_cast<char*>(out.device_data()) + size_t(i) * item,
                  static_cast<const char*>(sc.device_data()) + size_t(off[i]) * item, item);
    return out;
  }
  // As scatter_add_buckets_kernel (f64 here).
  Tensor scatter_add_flat(const Tensor& x, const Tensor& src, const Tensor& targets, const Tensor& sources) override {
    ++calls["scatter_add_flat"];
    REQUIRE(x.dtype() == DType::f64);
    REQUIRE(targets.numel() == sources.numel());
    std::vector<int64_t> off, order;
    backend::bucket_by_target(targets.data<int64_t>(), sources.data<int64_t>(), targets.numel(), x.numel(), off,
                              order);
    const Tensor xc = x.contiguous(), sc = src.contiguous();
    Tensor out = empty(x.shape(), x.dtype(), x.device());
    const double* xp = static_cast<const double*>(xc.device_data());
    const double* sp = static_cast<const double*>(sc.device_data());
    double* op = static_cast<double*>(out.device_data());
    for (int64_t t = 0; t < x.numel(); ++t) {
      double acc = xp[t];
      for (int64_t j = off[size_t(t)]; j < off[size_t(t) + 1]; ++j) acc += sp[order[size_t(j)]];
      op[t] = acc;
    }
    return out;
  }
  // index_add's source gradient (as cuda/kernels/index.cu, f64).
  Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) override {
    ++calls["index_select"];
    return test::host_index_select_f64(x, dim, index);
  }
};

struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

Tensor idx_tensor(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s); }

// f(x, src) and the gradients of x and src on the CPU and on the fake device, bit for bit.
template <class F>
void compare_with_cpu(F f, const Tensor& x, const Tensor& src) {
  Tensor xc = x.detach().requires_grad_(), xd = x.cuda().detach().requires_grad_();
  Tensor sc, sd;
  if (src.defined()) sc = src.detach().requires_grad_(), sd = src.cuda().detach().requires_grad_();
  Tensor yc = f(xc, sc), yd = f(xd, sd);
  CHECK(yd.device() == cuda_device(0));
  RV_EXPECT_CLOSE(yd.cpu(), yc, .rtol = 0, .atol = 0);
  const Tensor g = test::test_tensor(yc.shape(), 77, DType::f64);
  yc.backward(g);
  yd.backward(g.cuda());
  CHECK(xd.grad().device() == cuda_device(0));
  RV_EXPECT_CLOSE(xd.grad().cpu(), xc.grad(), .rtol = 0, .atol = 0);
  if (src.defined()) RV_EXPECT_CLOSE(sd.grad().cpu(), sc.grad(), .rtol = 0, .atol = 0);
}

}  // namespace

TEST_CASE("gather on a device: offsets from the host index, backward a bucketed scatter-add") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({3, 5, 4}, 1, DType::f64);
  // repeated picks: their gradients add up in the same order as on the CPU
  const Tensor i1 = idx_tensor({4, 0, 4, 4, 1, 2, 3, 3, 0, 0, 0, 4, 2, 2, 1, 1, 0, 3, 3, 3, 4, 4, 4, 4}, {3, 2, 4});
  compare_with_cpu([&](const Tensor& t, const Tensor&) { return gather(t, 1, i1); }, x, {});
  const Tensor i2 = idx_tensor({3, 0, 1, 1, 2, 2}, {2, 3, 1});  // smaller than x in the other dims
  compare_with_cpu([&](const Tensor& t, const Tensor&) { return gather(t, -1, i2); }, x, {});
  const Tensor i0 = idx_tensor({2, 0, 1, 2}, {1, 2, 2});
  compare_with_cpu([&](const Tensor& t, const Tensor&) { return gather(t.transpose(0, 2), 0, i0); }, x, {});
  CHECK(inst.fake.calls["take"] == 3);
  CHECK(inst.fake.calls["scatter_add_flat"] == 3);
  // any dtype moves: int64 values
  const Tensor xi = idx_tensor({5, 6, 7, 8, 9, 10}, {2, 3});
  const Tensor gi = gather(xi.cuda(), 1, idx_tensor({2, 2, 0, 1}, {2, 2}).cuda());
  CHECK(gi.cpu().to_double_vector() == std::vector<double>{7, 7, 8, 9});
}

TEST_CASE("scatter_add and index_add on a device equal the CPU, values and both gradients") {
  FakeInstalled inst;
  const Tensor x = test::test_tensor({3, 5, 4}, 1, DType::f64);
  const Tensor src = test::test_tensor({3, 3, 4}, 2, DType::f64);
  const Tensor i1 = idx_tensor({4, 0, 4, 4, 1, 2, 3, 3, 0, 0, 0, 4, 2, 2, 1, 1, 0, 3}, {3, 2, 3});  // collisions
  compare_with_cpu([&](const Tensor& t, const Tensor& s) { return scatter_add(t, 1, i1, s); }, x, src);
  const Tensor k = idx_tensor({4, 1, 4}, {3});
  compare_with_cpu([&](const Tensor& t, const Tensor& s) { return index_add(t, 1, k, s); }, x, src);
  compare_with_cpu([&](const Tensor& t, const Tensor& s) { return index_add(t, 0, idx_tensor({2, 2, 0}, {3}), s); },
                   x, test::test_tensor({3, 5, 4}, 3, DType::f64));
  CHECK(inst.fake.calls["scatter_add_flat"] == 3);
  CHECK(inst.fake.calls["take"] == 1);  // scatter_add's source gradient
  CHECK(inst.fake.calls["index_select"] == 2);
  // a bad index is reported before any device work, naming the op
  CHECK_THROWS_WITH_AS(scatter_add(x.cuda(), 1, idx_tensor({5}, {1, 1, 1}), src.cuda()),
                       doctest::Contains("scatter_add: index 5"), std::out_of_range);
  CHECK_THROWS_WITH_AS(scatter_add(x.cuda(), 1, i1, src), doctest::Contains("src is on cpu"), std::invalid_argument);
}

TEST_CASE("one_hot of device indices is a device tensor") {
  FakeInstalled inst;
  const Tensor ids = idx_tensor({2, 0, 1}, {3});
  const Tensor oh = one_hot(ids.cuda(), 4);
  CHECK(oh.device() == cuda_device(0));
  CHECK(oh.cpu().to_double_vector() == one_hot(ids, 4).to_double_vector());
}
