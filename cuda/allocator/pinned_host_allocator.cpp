// pinned_host_allocator.cpp: see pinned_host_allocator.h.
#include "cuda/allocator/pinned_host_allocator.h"

#include <stdexcept>

#include "cuda/allocator/caching_allocator.h"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

// Rounded up as the device allocator rounds (at most 12.5% slack), so batches of one shape share
// one class.
size_t pinned_size_class(size_t nbytes) { return CachingAllocator::size_class(nbytes == 0 ? 1 : nbytes); }

bool done(cudaEvent_t e) {
  if (!e) return true;
  const cudaError_t st = cudaEventQuery(e);
  if (st == cudaErrorNotReady) {
    cudaGetLastError();  // not an error: clear the slot
    return false;
  }
  RV_CUDA_CHECK(st);
  return true;
}

}  // namespace

void* PinnedHostAllocator::allocate(size_t nbytes) {
  const size_t size = pinned_size_class(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  // The smallest kept block of exactly this class whose DMAs are over.
  for (auto& [p, b] : blocks_) {
    if (!b.live && b.size == size && done(b.last_use)) {
      b.live = true;
      return const_cast<char*>(p);
    }
  }
  void* p = nullptr;
  // Portable: usable from every device's streams, not only the current one's.
  cudaError_t st = cudaHostAlloc(&p, size, cudaHostAllocPortable);
  if (st != cudaSuccess) {
    cudaGetLastError();
    // Give back the kept blocks that are idle, then try once more.
    for (auto it = blocks_.begin(); it != blocks_.end();) {
      if (!it->second.live && done(it->second.last_use)) {
        if (it->second.last_use) cudaEventDestroy(it->second.last_use);
        cudaFreeHost(const_cast<char*>(it->first));
        it = blocks_.erase(it);
      } else {
        ++it;
      }
    }
    RV_CUDA_CHECK(cudaHostAlloc(&p, size, cudaHostAllocPortable));
  }
  Block& b = blocks_[static_cast<const char*>(p)];
  b.size = size;
  b.live = true;
  return p;
}

void PinnedHostAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.find(static_cast<const char*>(p));
  if (it == blocks_.end() || !it->second.live) throw std::logic_error("PinnedHostAllocator::free: not a live block");
  it->second.live = false;  // kept; reused once its last DMA is done
}

bool PinnedHostAllocator::contains(const void* p, size_t nbytes) {
  const char* c = static_cast<const char*>(p);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.upper_bound(c);  // the first block starting after p
  if (it == blocks_.begin()) return false;
  --it;
  return it->second.live && c + nbytes <= it->first + it->second.size;
}

void PinnedHostAllocator::record_use(const void* p, cudaStream_t stream) {
  const char* c = static_cast<const char*>(p);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.upper_bound(c);
  if (it == blocks_.begin()) return;
  --it;
  if (c >= it->first + it->second.size) return;
  if (!it->second.last_use) RV_CUDA_CHECK(cudaEventCreateWithFlags(&it->second.last_use, cudaEventDisableTiming));
  RV_CUDA_CHECK(cudaEventRecord(it->second.last_use, stream));
}

size_t PinnedHostAllocator::cached_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& [p, b] : blocks_)
    if (!b.live) n += b.size;
  return n;
}

PinnedHostAllocator& pinned_host_allocator() {
  static PinnedHostAllocator* a = new PinnedHostAllocator();  // lives for the whole program
  return *a;
}

}  // namespace rv::cuda
