// caching_allocator.h: device memory for tensors without a cudaMalloc in the training loop.
//
// Why: cudaMalloc and cudaFree are slow (tens of microseconds to milliseconds) and cudaFree
// synchronises the whole device. A training step allocates the same sizes step after step, so
// a freed block is kept and handed out again instead.
//
// What: a request is rounded up to a size class (multiples of 512 bytes below 1 MiB, then 8
// classes per power of two: at most 12.5% slack). A freed block goes onto the free list of its
// (stream, size class); an allocation on that stream takes one from there first. Reuse on the
// same stream is safe without any sync: every kernel that used the block was queued on that
// stream before any kernel that will use it next. (A block used on another stream would need
// an event before it is freed; nothing does that yet.)
//
// Statistics (backend::MemoryStats): allocated, reserved, peaks, requested bytes, hits.
// ROPEVIT_CUDA_ALLOC=plain in the environment bypasses the cache: every allocation is a
// cudaMalloc and every free a cudaFree (to hunt memory bugs with compute-sanitizer). When
// cudaMalloc fails the cache is emptied and the call retried once before reporting out of memory.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/backend.h"

namespace rv::cuda {

class CachingAllocator {
 public:
  // `caching` false: the plain mode (ROPEVIT_CUDA_ALLOC=plain).
  CachingAllocator(int device, bool caching);
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // At least `nbytes` (0 gives a valid, unique block) for work queued on `stream`.
  void* allocate(size_t nbytes, cudaStream_t stream);
  void free(void* p);  // a block from allocate(), or nullptr

  backend::MemoryStats stats();
  void reset_peak();
  void empty_cache();  // cudaFree of every cached block

  static size_t size_class(size_t nbytes);

 private:
  struct Block {
    size_t size;       // its size class
    size_t requested;  // what the caller asked for
    cudaStream_t stream;
  };
  using FreeKey = std::pair<cudaStream_t, size_t>;

  void* device_malloc(size_t bytes);  // with one retry after emptying the cache
  void empty_cache_locked();

  int device_;
  bool caching_;
  std::mutex mu_;
  std::unordered_map<void*, Block> live_;
  std::map<FreeKey, std::vector<void*>> free_;
  backend::MemoryStats stats_;
};

// The allocator of `device`, made on first use (caching unless ROPEVIT_CUDA_ALLOC=plain).
CachingAllocator& device_allocator(int device);

}  // namespace rv::cuda
