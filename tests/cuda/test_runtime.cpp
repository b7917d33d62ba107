// test_runtime.cpp: the CUDA runtime pieces: host <-> device round trips (pinned, chunked),
// device-side factories and fills, the caching allocator's reuse and statistics, the error
// checks, record_stream (a block another stream used waits for it), and the "not implemented on
// cuda:0 yet" errors. Skipped (exit 77) without a GPU.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "cuda/allocator/caching_allocator.h"
#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/pinned_copy.h"
#include "cuda/runtime/stream.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"
#include "engine/ops/conv.h"
#include "engine/ops/matmul.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// Bit-exact equality of two host tensors of one dtype and shape.
bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.raw_data(), bc.raw_data(), size_t(ac.numel()) * ac.itemsize()) == 0;
}

}  // namespace

TEST_CASE("device query names the GPU") {
  const cuda::DeviceInfo info = cuda::device_info(0);
  MESSAGE("device 0: " << info.name << ", sm_" << info.major << info.minor << ", " << info.multiprocessors
                       << " SMs, " << (info.total_memory >> 20) << " MiB");
  CHECK(!info.name.empty());
  CHECK(info.multiprocessors > 0);
  CHECK(backend::get(kDev).device_name(0) == info.name);
}

TEST_CASE("round trip host -> device -> host is exact for every dtype, odd and empty shapes") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::boolean}) {
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{7}, Shape{3, 0, 5}, Shape{13, 1, 37}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(shape));
      const Tensor x = test::test_tensor(shape, 5, DType::f32, -100, 100).to(dt);
      const Tensor d = x.cuda();
      CHECK(d.device() == kDev);
      CHECK(d.dtype() == dt);
      CHECK(d.shape() == shape);
      CHECK(same_bytes(d.cpu(), x));
    }
  }
}

TEST_CASE("round trip of a tensor larger than the staging chunk, and of a non-contiguous source") {
  const int64_t n = int64_t(cuda::pinned_chunk_bytes() / 4) * 2 + 12345;  // 2 full chunks and a tail
  const Tensor x = test::test_tensor({n}, 7);
  CHECK(same_bytes(x.cuda().cpu(), x));
  const Tensor nc = test::test_noncontiguous({6, 9, 11}, 8);
  const Tensor d = nc.cuda();
  CHECK(d.is_contiguous());
  CHECK(same_bytes(d.cpu(), nc));
  // Device -> device copy (clone of a contiguous tensor) and a second round trip.
  CHECK(same_bytes(d.clone().cpu(), nc));
  CHECK(same_bytes(d.to(kDev).cpu(), nc));
}

TEST_CASE("zeros, ones, full and fill_ on a strided device view") {
  CHECK(same_bytes(zeros({5, 3}, DType::f32, kDev).cpu(), zeros({5, 3})));
  CHECK(same_bytes(ones({2, 0}, DType::f32, kDev).cpu(), ones({2, 0})));
  CHECK(same_bytes(full({4, 3}, -2.5, DType::bf16, kDev).cpu(), full({4, 3}, -2.5, DType::bf16)));
  CHECK(same_bytes(full({3}, 7, DType::i64, kDev).cpu(), full({3}, 7, DType::i64)));
  CHECK(same_bytes(ones({9}, DType::boolean, kDev).cpu(), ones({9}, DType::boolean)));
  // fill_ through a transposed, stepped view touches exactly the view's elements.
  const Tensor base = test::test_tensor({6, 8}, 9);
  Tensor host = base.clone(), dev = base.cuda();
  host.t().slice(0, 1, 8, 3).fill_(4.25);
  dev.t().slice(0, 1, 8, 3).fill_(4.25);
  CHECK(same_bytes(dev.cpu(), host));
}

TEST_CASE("caching allocator: a freed block is reused on its stream; statistics add up") {
  backend::DeviceBackend& b = backend::get(kDev);
  b.synchronize(0);
  b.empty_cache(0);
  const backend::MemoryStats s0 = b.memory_stats(0);
  if (!s0.caching) {
    MESSAGE("ROPEVIT_CUDA_ALLOC=plain: the reuse checks are skipped");
    return;
  }
  const size_t bytes = (size_t(3) << 20) + 100;  // 3 MiB + 100: rounded up to its size class
  const size_t cls = cuda::CachingAllocator::size_class(bytes);
  CHECK(cls >= bytes);
  CHECK(cls <= bytes + bytes / 8);
  {
    Tensor t = empty({int64_t(bytes)}, DType::u8, kDev);
    const backend::MemoryStats s1 = b.memory_stats(0);
    CHECK(s1.allocated == s0.allocated + cls);
    CHECK(s1.requested == s0.requested + bytes);
    CHECK(s1.reserved == s0.reserved + cls);
    CHECK(s1.device_mallocs == s0.device_mallocs + 1);
    CHECK(s1.peak_allocated >= s1.allocated);
  }
  const backend::MemoryStats s2 = b.memory_stats(0);
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.reserved == s0.reserved + cls);  // kept in the cache
  {
    Tensor t = empty({int64_t(bytes) - 50}, DType::u8, kDev);  // same size class: reused
    const backend::MemoryStats s3 = b.memory_stats(0);
    CHECK(s3.device_mallocs == s2.device_mallocs);
    CHECK(s3.cache_hits == s2.cache_hits + 1);
  }
  b.empty_cache(0);
  CHECK(b.memory_stats(0).reserved == s0.reserved);
  b.reset_peak_stats(0);
  CHECK(b.memory_stats(0).peak_allocated == b.memory_stats(0).allocated);
}

TEST_CASE("caching allocator: size classes, the plain mode, a foreign pointer") {
  using cuda::CachingAllocator;
  CHECK(CachingAllocator::size_class(0) == 512);
  CHECK(CachingAllocator::size_class(1) == 512);
  CHECK(CachingAllocator::size_class(513) == 1024);
  CHECK(CachingAllocator::size_class(size_t(1) << 20) == size_t(1) << 20);
  CHECK(CachingAllocator::size_class((size_t(1) << 20) + 1) == (size_t(1) << 20) + (size_t(1) << 17));
  CachingAllocator plain(0, /*caching=*/false);
  cudaStream_t s = cuda::compute_stream(0);
  void* p = plain.allocate(1000, s);
  CHECK(plain.stats().reserved == 1000);
  plain.free(p);
  void* q = plain.allocate(1000, s);
  plain.free(q);
  const backend::MemoryStats st = plain.stats();
  CHECK(st.device_mallocs == 2);  // no reuse
  CHECK(st.cache_hits == 0);
  CHECK(st.reserved == 0);
  CHECK(!st.caching);
  int on_host = 0;
  CHECK_THROWS_AS(plain.free(&on_host), std::logic_error);
}

namespace {
// Holds a stream busy until released: a host function queued on it spins on a flag.
struct StreamGate {
  std::atomic<bool> open{false};
  static void CUDART_CB hold(void* self) {
    auto* g = static_cast<StreamGate*>(self);
    while (!g->open.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
};
}  // namespace

TEST_CASE("caching allocator: record_stream keeps a block from its next owner until the other stream is done") {
  cuda::CachingAllocator alloc(0, /*caching=*/true);
  cudaStream_t compute = cuda::compute_stream(0), other = nullptr;
  RV_CUDA_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  StreamGate gate;
  void* p = alloc.allocate(size_t(1) << 20, compute);
  RV_CUDA_CHECK(cudaLaunchHostFunc(other, &StreamGate::hold, &gate));  // "a collective still running"
  RV_CUDA_CHECK(cudaMemsetAsync(p, 0, size_t(1) << 20, other));        // the other stream uses p
  alloc.record_stream(static_cast<char*>(p) + 4096, other);            // any address inside the block
  alloc.free(p);
  CHECK(alloc.stats().waiting_for_streams == size_t(1) << 20);
  void* q = alloc.allocate(size_t(1) << 20, compute);  // the other stream is busy: a fresh block
  CHECK(q != p);
  gate.open = true;
  RV_CUDA_CHECK(cudaStreamSynchronize(other));
  void* r = alloc.allocate(size_t(1) << 20, compute);  // its event has completed: p again
  CHECK(r == p);
  CHECK(alloc.stats().waiting_for_streams == 0);
  CHECK(alloc.stats().cache_hits == 1);
  // A block freed while the other stream is busy goes back to the device on empty_cache (it waits).
  gate.open = false;
  RV_CUDA_CHECK(cudaLaunchHostFunc(other, &StreamGate::hold, &gate));
  alloc.record_stream(r, other);
  alloc.free(r);
  alloc.free(q);
  std::thread opener([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.open = true;
  });
  alloc.empty_cache();
  opener.join();
  CHECK(alloc.stats().reserved == 0);
  CHECK_THROWS_AS(alloc.record_stream(p, other), std::logic_error);  // freed: in no live block
  RV_CUDA_CHECK(cudaStreamSynchronize(other));
  RV_CUDA_CHECK(cudaStreamDestroy(other));
}

TEST_CASE("error checks name the call or kernel, the file and the line") {
  const std::string call = error_of([] { RV_CUDA_CHECK(cudaSetDevice(12345)); });
  CHECK_MESSAGE(call.find("cudaSetDevice(12345)") != std::string::npos, call);
  CHECK_MESSAGE(call.find("test_runtime.cpp:") != std::string::npos, call);
  cudaGetLastError();
  // The launch check reports the runtime's pending error under the kernel's name (here one left by
  // a failed call, as a failed launch would leave it).
  const std::string launch = error_of([] {
    (void)cudaSetDevice(12345);
    RV_CUDA_CHECK_LAUNCH("impossible_kernel");
  });
  CHECK_MESSAGE(launch.find("impossible_kernel") != std::string::npos, launch);
  cudaGetLastError();
}

TEST_CASE("ops without a CUDA kernel fail naming the op and the device") {
  // Ops that have no device kernel yet (cuDNN / pooling kernels come later); they must fail, not
  // run on the CPU behind the caller's back.
  const Tensor x = test::test_tensor({1, 2, 6, 6}, 3).cuda();
  const Tensor w = test::test_tensor({4, 2, 3, 3}, 4).cuda();
  const std::string conv = error_of([&] { conv2d(x, w, Tensor(), {1, 1}, {1, 1}); });
  const bool conv_named = conv.find("conv2d") != std::string::npos;
  const bool conv_refused = conv.find("not implemented on cuda:0 yet") != std::string::npos;
  CHECK_MESSAGE(conv_named, conv);
  CHECK_MESSAGE(conv_refused, conv);
  const std::string pool = error_of([&] { max_pool2d(x, {2, 2}); });
  CHECK_MESSAGE(pool.find("not implemented on cuda:0 yet") != std::string::npos, pool);
  CHECK(error_of([&] { add(x, test::test_tensor({1, 2, 6, 6}, 3)); }).find("operands on different devices") !=
        std::string::npos);
}
