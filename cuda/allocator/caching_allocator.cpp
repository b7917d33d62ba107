// caching_allocator.cpp: the per-(stream, size class) free lists (see caching_allocator.h).
#include "cuda/allocator/caching_allocator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"

namespace rv::cuda {

namespace {

constexpr size_t kSmallStep = 512;             // cudaMalloc aligns to 256; 512 keeps classes few
constexpr size_t kLargeFrom = size_t(1) << 20; // from 1 MiB: 8 classes per power of two

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

size_t CachingAllocator::size_class(size_t nbytes) {
  if (nbytes < kLargeFrom) return nbytes == 0 ? kSmallStep : (nbytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  const int p = 63 - __builtin_clzll(static_cast<unsigned long long>(nbytes));
  const size_t step = size_t(1) << (p - 3);
  return (nbytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(int device, bool caching) : device_(device), caching_(caching) {
  stats_.caching = caching;
}

void* CachingAllocator::device_malloc(size_t bytes) {
  DeviceGuard g(device_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it, then give the cache back and try once more
    empty_cache_locked();
    err = cudaMalloc(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw std::runtime_error("cuda:" + std::to_string(device_) + ": out of memory allocating " + std::to_string(bytes) +
                             " bytes (tensors hold " + mib(stats_.allocated) + ", reserved " + mib(stats_.reserved) +
                             ", device free " + mib(free_b) + " of " + mib(total_b) + ")");
  }
  if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
  ++stats_.device_mallocs;
  stats_.reserved += bytes;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return p;
}

void* CachingAllocator::allocate(size_t nbytes, cudaStream_t stream) {
  const size_t cls = caching_ ? size_class(nbytes) : std::max<size_t>(nbytes, 1);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  void* p = nullptr;
  if (caching_) {
    auto it = free_.find(FreeKey{stream, cls});
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();  // the most recently freed: likeliest to be in L2 still
      it->second.pop_back();
      ++stats_.cache_hits;
    }
  }
  if (!p) p = device_malloc(cls);
  live_.emplace(p, Block{cls, nbytes, stream});
  stats_.allocated += cls;
  stats_.requested += nbytes;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return p;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end())
    throw std::logic_error("cuda allocator: free of a pointer it did not hand out (double free?)");
  const Block b = it->second;
  live_.erase(it);
  stats_.allocated -= b.size;
  stats_.requested -= b.requested;
  if (caching_) {
    free_[FreeKey{b.stream, b.size}].push_back(p);
    return;
  }
  DeviceGuard g(device_);
  RV_CUDA_CHECK(cudaFree(p));
  stats_.reserved -= b.size;
}

void CachingAllocator::empty_cache_locked() {
  DeviceGuard g(device_);
  for (auto& [key, blocks] : free_) {
    for (void* p : blocks) {
      RV_CUDA_CHECK(cudaFree(p));
      stats_.reserved -= key.second;
    }
  }
  free_.clear();
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  empty_cache_locked();
}

backend::MemoryStats CachingAllocator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
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
