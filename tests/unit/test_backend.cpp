// test_backend.cpp: the device backend interface (engine/backend.h), on any machine.
//
// 1. The lookup of the CUDA backend gives a clear error when it is not built in (CPU-only build)
//    or when no device is present.
// 2. The engine side of the interface (Storage, Tensor::to / cpu(), zeros, fill_, copy_,
//    add/sub/mul/div, sum, the "not implemented" errors) is driven through a fake "cuda" backend
//    that keeps its memory on the host and counts the calls it gets. It stands in for the real
//    one during a test and is removed afterwards.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A "device" whose memory is plain host memory: enough to check what the engine asks of a backend.
class FakeBackend final : public backend::DeviceBackend {
 public:
  std::map<std::string, int> calls;
  size_t live_bytes = 0;
  std::map<void*, size_t> blocks;

  DeviceType type() const override { return DeviceType::cuda; }
  int device_count() const override { return 1; }
  std::string unavailable_reason() const override { return ""; }
  std::string device_name(int) const override { return "fake"; }
  void synchronize(int) override { ++calls["synchronize"]; }
  void* allocate(size_t n, int) override {
    ++calls["allocate"];
    void* p = std::malloc(n ? n : 1);
    blocks[p] = n;
    live_bytes += n;
    return p;
  }
  void deallocate(void* p, int) override {
    ++calls["deallocate"];
    live_bytes -= blocks.at(p);
    blocks.erase(p);
    std::free(p);
  }
  void memset(void* d, int byte, size_t n, int) override {
    ++calls["memset"];
    std::memset(d, byte, n);
  }
  void copy_from_host(void* d, const void* s, size_t n, int) override {
    ++calls["copy_from_host"];
    std::memcpy(d, s, n);
  }
  void copy_to_host(void* d, const void* s, size_t n, int) override {
    ++calls["copy_to_host"];
    std::memcpy(d, s, n);
  }
  void copy_on_device(void* d, const void* s, size_t n, int) override {
    ++calls["copy_on_device"];
    std::memcpy(d, s, n);
  }
  backend::MemoryStats memory_stats(int) override { return {}; }
  void reset_peak_stats(int) override {}
  void empty_cache(int) override {}
  // Only add, on contiguous same-shape f32 tensors; everything else keeps the default (throws).
  Tensor binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) override {
    ++calls[backend::binary_op_name(op)];
    if (op != backend::BinaryOp::add) return DeviceBackend::binary(op, a, b);
    REQUIRE(a.shape() == b.shape());
    REQUIRE(a.is_contiguous());
    REQUIRE(b.is_contiguous());
    Tensor z = empty(a.shape(), a.dtype(), a.device());
    auto* zp = static_cast<float*>(z.device_data());
    auto* ap = static_cast<const float*>(a.device_data());
    auto* bp = static_cast<const float*>(b.device_data());
    for (int64_t i = 0; i < a.numel(); ++i) zp[i] = ap[i] + bp[i];
    return z;
  }
};

// Installs a FakeBackend for the test's lifetime, then puts back what was there.
struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() {
    previous = backend::set_backend(DeviceType::cuda, &fake);
  }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

const Device kDev = cuda_device(0);

}  // namespace

TEST_CASE("backend lookup: the CPU is always there; cuda says clearly why it is not") {
  CHECK(backend::compiled_in(DeviceType::cpu));
  CHECK(backend::device_count(DeviceType::cpu) == 1);
  CHECK_THROWS_WITH_AS(backend::get(cpu_device()), doctest::Contains("CPU kernels are called directly"),
                       std::logic_error);
  if (!backend::compiled_in(DeviceType::cuda)) {
    // The CPU-only build (ROPEVIT_CUDA=OFF, or no nvcc): the lookup names the device and the fix.
    CHECK(backend::device_count(DeviceType::cuda) == 0);
    const std::string msg = error_of([] { backend::get(kDev); });
    CHECK_MESSAGE(msg == "cuda:0: this build has no cuda backend (configure with -DROPEVIT_CUDA=ON on a machine "
                         "with nvcc)",
                  msg);
    CHECK(error_of([] { empty({2, 3}, DType::f32, kDev); }) == msg);
    CHECK(error_of([] { (void)from_vector(std::vector<float>{1, 2}, {2}).cuda(); }) == msg);
  } else if (backend::device_count(DeviceType::cuda) == 0) {
    // CUDA built in, no GPU (CI): the error says there is no device and why.
    const std::string msg = error_of([] { backend::get(kDev); });
    CHECK_MESSAGE(msg.rfind("cuda:0: no CUDA device is available (", 0) == 0, msg);
  } else {
    const int n = backend::device_count(DeviceType::cuda);
    CHECK(error_of([n] { backend::get(cuda_device(n)); }).find("no such device") != std::string::npos);
  }
}

TEST_CASE("backend: set_backend refuses the CPU slot") {
  CHECK_THROWS_AS(backend::set_backend(DeviceType::cpu, nullptr), std::invalid_argument);
}

TEST_CASE("backend (fake device): storage, round trip, zeros, fill_ on a view, copies between devices") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor x = test::test_tensor({3, 5, 7}, 11);
  {
    Tensor d = x.cuda();
    CHECK(d.device() == kDev);
    CHECK(d.shape() == x.shape());
    CHECK(f.calls["allocate"] == 1);
    CHECK(f.calls["copy_from_host"] == 1);
    CHECK(f.live_bytes == size_t(x.numel()) * 4);
    CHECK(d.to(kDev).same(d));  // already there: no copy
    Tensor back = d.cpu();
    CHECK(back.device().is_cpu());
    CHECK(f.calls["copy_to_host"] == 1);
    RV_EXPECT_CLOSE(back, x, .rtol = 0, .atol = 0);
  }
  CHECK(f.live_bytes == 0);  // the device block went back through deallocate
  CHECK(f.calls["deallocate"] == 1);
}

TEST_CASE("backend (fake device): zeros, ones, fill_ and copy_ reach the backend") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  Tensor z = zeros({4, 0, 3}, DType::f32, kDev);  // empty: no memset needed
  CHECK(f.calls["memset"] == 0);
  Tensor z2 = zeros({4, 3}, DType::f64, kDev);
  CHECK(f.calls["memset"] == 1);
  CHECK(z2.cpu().to_double_vector() == std::vector<double>(12, 0.0));
  // No fill kernel in the fake: the default entry names the op and the device.
  CHECK(error_of([] { ones({2}, DType::f32, kDev); }) == "fill_: not implemented on cuda:0 yet");
  // copy_ of a same-size host tensor into a device tensor goes host -> device, then a device copy.
  Tensor d = empty({2, 3}, DType::f32, kDev);
  CHECK(error_of([&] { d.copy_(test::test_tensor({2, 3}, 3)); }) == "copy: not implemented on cuda:0 yet");
  CHECK(f.calls["copy_from_host"] == 1);
  CHECK(zeros_like(d).device() == kDev);
  CHECK(empty_like(d).device() == kDev);
}

TEST_CASE("backend (fake device): ops go to the backend or fail naming the op, never run on the CPU") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor a = test::test_tensor({5, 9}, 1), b = test::test_tensor({5, 9}, 2);
  const Tensor da = a.cuda(), db = b.cuda();
  // add: the backend's kernel.
  Tensor s = add(da, db);
  CHECK(f.calls["add"] == 1);
  CHECK(s.device() == kDev);
  RV_EXPECT_CLOSE(s.cpu(), add(a, b), .rtol = 0, .atol = 0);
  // mul: reaches the backend, which has no kernel for it.
  CHECK(error_of([&] { mul(da, db); }) == "mul: not implemented on cuda:0 yet");
  CHECK(f.calls["mul"] == 1);
  // Ops that use the CPU maps name themselves.
  CHECK(error_of([&] { rv::exp(da); }) == "exp: not implemented on cuda:0 yet");
  CHECK(error_of([&] { neg(da); }) == "neg: not implemented on cuda:0 yet");
  CHECK(error_of([&] { mul(da, 2.0); }) == "mul: not implemented on cuda:0 yet");
  // The sum of all elements is a backend entry; partial sums are not on devices yet.
  CHECK(error_of([&] { sum(da); }) == "sum: not implemented on cuda:0 yet");
  CHECK(error_of([&] { sum(da, {1}); }) == "sum: reducing over some dims only is not implemented on cuda:0 yet");
  // Any other CPU kernel stops at Tensor::data instead of reading device memory.
  const std::string mm = error_of([&] { matmul(da, db.t()); });
  CHECK_MESSAGE(mm.find("not implemented on cuda:0 yet") != std::string::npos, mm);
  // Mixing devices or dtypes is refused.
  CHECK(error_of([&] { add(da, b); }).find("add: operands on different devices (cuda:0 and cpu)") == 0);
  // Mixed float dtypes are promoted as on the CPU, through the backend's conversion (which this
  // fake backend lacks, so that is what fails); an integer operand is refused by name.
  const std::string mixed = error_of([&] { add(da, b.to(DType::f64).cuda()); });
  CHECK_MESSAGE(mixed.find("not implemented on cuda:0 yet") != std::string::npos, mixed);
  CHECK(error_of([&] { add(da, b.to(DType::i64).cuda()); }).find("add: mixed dtypes") == 0);
  // item() and to_vector() copy to the host first.
  CHECK(da.select(0, 2).select(0, 3).item() == doctest::Approx(a.select(0, 2).select(0, 3).item()));
  CHECK(db.to_vector<float>() == b.to_vector<float>());
}

TEST_CASE("parse_device reads cpu, cuda and cuda:N and names what it expected otherwise") {
  CHECK(parse_device("cpu") == cpu_device());
  CHECK(parse_device("cuda") == cuda_device(0));
  CHECK(parse_device("cuda:0") == cuda_device(0));
  CHECK(parse_device("cuda:12") == cuda_device(12));
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1a", "CPU", "cuda:123456"})
    CHECK_THROWS_WITH_AS(parse_device(bad), doctest::Contains("expected cpu, cuda or cuda:N"), std::invalid_argument);
}

TEST_CASE("pinned host memory: a clear error without a CUDA device, page-locked host tensors with one") {
  if (backend::device_count(DeviceType::cuda) == 0) {
    CHECK_THROWS_WITH(empty_pinned({4, 3}), doctest::Contains("pin_memory: page-locked host memory needs a CUDA device: cuda:0"));
    CHECK_THROWS_WITH(zeros({2}).pin_memory(), doctest::Contains("pin_memory"));
    CHECK_FALSE(zeros({2}).is_pinned());
    return;
  }
  Tensor p = empty_pinned({4, 3});
  CHECK(p.is_pinned());
  CHECK(p.device().is_cpu());
  Tensor x = arange(0.0, 12.0).reshape({4, 3});
  Tensor q = x.pin_memory();
  CHECK(q.is_pinned());
  CHECK(q.pin_memory().storage() == q.storage());  // already pinned: itself
  for (int64_t i = 0; i < 12; ++i) CHECK(q.data<float>()[i] == float(i));
}
