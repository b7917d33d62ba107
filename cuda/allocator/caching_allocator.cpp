// caching_allocator.cpp: BlockPool (block_pool.h) wired to the CUDA runtime: cudaMalloc / cudaFree
// on the allocator's device, and a pool of events for the blocks that other streams used.
#include "cuda/allocator/caching_allocator.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"

namespace rv::cuda {

class CachingAllocator::CudaCalls final : public DeviceMemoryCalls {
 public:
  explicit CudaCalls(int device) : device_(device) {}
  ~CudaCalls() override {
    for (cudaEvent_t e : spare_events_) cudaEventDestroy(e);  // no throwing from here
  }

  void* malloc_bytes(size_t bytes) override {
    DeviceGuard g(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the pool empties its cache and retries, or reports
      return nullptr;
    }
    if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
    return p;
  }
  void free_bytes(void* p) override {
    DeviceGuard g(device_);
    RV_CUDA_CHECK(cudaFree(p));
  }
  // Events are reused: cudaEventCreate costs a driver call, and a step may free many blocks.
  EventHandle record_event(StreamHandle stream) override {
    DeviceGuard g(device_);
    cudaEvent_t e = nullptr;
    if (spare_events_.empty()) {
      RV_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    } else {
      e = spare_events_.back();
      spare_events_.pop_back();
    }
    RV_CUDA_CHECK(cudaEventRecord(e, static_cast<cudaStream_t>(const_cast<void*>(stream))));
    return e;
  }
  bool event_done(EventHandle e) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(e));
    if (err == cudaErrorNotReady) {
      cudaGetLastError();  // "not ready" is an answer, not an error to leave behind
      return false;
    }
    if (err != cudaSuccess) throw_cuda_error(err, "cudaEventQuery", __FILE__, __LINE__);
    return true;
  }
  void event_wait(EventHandle e) override { RV_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }
  void release_event(EventHandle e) override { spare_events_.push_back(static_cast<cudaEvent_t>(e)); }
  std::string memory_report() override {
    DeviceGuard g(device_);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      cudaGetLastError();
      return "";
    }
    return "device free " + std::to_string(free_b >> 20) + " MiB of " + std::to_string(total_b >> 20) + " MiB";
  }

 private:
  int device_;
  std::vector<cudaEvent_t> spare_events_;
};

CachingAllocator::CachingAllocator(int device, bool caching)
    : calls_(std::make_unique<CudaCalls>(device)),
      pool_(std::make_unique<BlockPool>(*calls_, caching, "cuda:" + std::to_string(device))) {}

// The pool first (it refers to the calls), as the members' order does by itself; spelled out here
// because CudaCalls is complete only in this file.
CachingAllocator::~CachingAllocator() { pool_.reset(); }

void* CachingAllocator::allocate(size_t nbytes, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  return pool_->allocate(nbytes, stream);
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  pool_->free(p);
}

void CachingAllocator::record_stream(const void* p, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  pool_->record_stream(p, stream);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  pool_->empty_cache();
}

backend::MemoryStats CachingAllocator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return pool_->stats();
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  pool_->reset_peak();
}

CachingAllocator& device_allocator(int device) {
  static std::mutex mu;
  // Never destroyed: tensors held by static objects may be freed after main returns.
  static std::vector<CachingAllocator*>* all = new std::vector<CachingAllocator*>();
  std::lock_guard<std::mutex> lock(mu);
  const int n = device_count();
  if (device < 0 || device >= n)
    throw std::runtime_error("cuda allocator: no device " + std::to_string(device) + " (" + std::to_string(n) +
                             " present)");
  if (all->empty()) {
    const char* mode = std::getenv("ROPEVIT_CUDA_ALLOC");
    bool caching = true;
    if (mode && *mode) {
      if (std::strcmp(mode, "plain") == 0)
        caching = false;
      else if (std::strcmp(mode, "caching") != 0)
        throw std::invalid_argument(std::string("ROPEVIT_CUDA_ALLOC must be 'plain' or 'caching', got '") + mode + "'");
    }
    for (int d = 0; d < n; ++d) all->push_back(new CachingAllocator(d, caching));
  }
  return *(*all)[size_t(device)];
}

}  // namespace rv::cuda
