// caching_allocator.h: device memory for tensors without a cudaMalloc in the training loop.
//
// Why: cudaMalloc and cudaFree are slow (tens of microseconds to milliseconds) and cudaFree
// synchronises the whole device. A training step allocates the same sizes step after step, so
// a freed block is kept and handed out again instead.
//
// What: the policy lives in block_pool.h (size classes, free lists per (stream, size class),
// statistics, the out-of-memory retry); this class gives it a mutex and the CUDA calls (cudaMalloc,
// cudaFree, pooled events). A block freed on the stream it was allocated for is reused at once;
// one that another stream used (record_stream) waits for an event on that stream first.
//
// Statistics (backend::MemoryStats): allocated, reserved, peaks, requested bytes, hits, bytes
// waiting for other streams. ROPEVIT_CUDA_ALLOC=plain in the environment bypasses the cache:
// every allocation is a cudaMalloc and every free a cudaFree (to hunt memory bugs with
// compute-sanitizer). When cudaMalloc fails the cache is emptied and the call retried once
// before reporting out of memory.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>

#include "cuda/allocator/block_pool.h"
#include "engine/backend.h"

namespace rv::cuda {

class CachingAllocator {
 public:
  // `caching` false: the plain mode (ROPEVIT_CUDA_ALLOC=plain).
  CachingAllocator(int device, bool caching);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // At least `nbytes` (0 gives a valid, unique block) for work queued on `stream`.
  void* allocate(size_t nbytes, cudaStream_t stream);
  void free(void* p);  // a block from allocate(), or nullptr
  // Work queued on `stream` uses the block holding `p` (any address inside a live block): when the
  // block is freed it is not handed out again before that work is done. Call it after queuing the
  // work, before the block can be freed. PyTorch's Tensor.record_stream.
  void record_stream(const void* p, cudaStream_t stream);

  backend::MemoryStats stats();
  void reset_peak();
  void empty_cache();  // cudaFree of every cached block (waits for blocks other streams still use)

  static size_t size_class(size_t nbytes) { return BlockPool::size_class(nbytes); }

 private:
  class CudaCalls;
  std::unique_ptr<CudaCalls> calls_;
  std::mutex mu_;
  std::unique_ptr<BlockPool> pool_;
};

// The allocator of `device`, made on first use (caching unless ROPEVIT_CUDA_ALLOC=plain).
CachingAllocator& device_allocator(int device);

}  // namespace rv::cuda
