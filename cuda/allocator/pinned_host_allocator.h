// pinned_host_allocator.h: page-locked (pinned) host memory for batches on their way to a GPU.
//
// Why: the GPU's copy engine reads host memory directly (DMA) only when the pages are locked.
// From ordinary memory every host -> device copy first goes through a pinned staging buffer
// (pinned_copy.cpp): one extra memcpy of the whole batch on the CPU. A data loader that writes
// its batches into pinned memory in the first place makes the transfer one asynchronous DMA,
// and the CPU is free at once (PyTorch's DataLoader(pin_memory=True) does the same).
//
// What: cudaHostAlloc is slow (it locks pages: milliseconds for a batch) and loaders allocate the
// same batch size over and over, so freed blocks are kept by size class (as the device allocator
// does) and handed out again. A block may still be read by a DMA queued on a stream when its
// tensor is freed: each copy from a block records an event (record_use), and a kept block is
// only handed out again once its last event has completed. Nothing here ever waits.
//
// `find` answers "is this pointer inside a pinned block?" so that copies can take the direct path
// for any view into a pinned tensor.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <mutex>

namespace rv::cuda {

class PinnedHostAllocator {
 public:
  void* allocate(size_t nbytes);  // at least nbytes; 0 gives a valid, unique block
  void free(void* p);             // a block from allocate(), or nullptr
  // True when [p, p + nbytes) lies inside one live pinned block.
  bool contains(const void* p, size_t nbytes);
  // A DMA that reads or writes the block holding p was queued on `stream`: the block is not
  // handed out again before that work is done.
  void record_use(const void* p, cudaStream_t stream);

  size_t cached_bytes();  // kept for reuse now

 private:
  struct Block {
    size_t size = 0;
    bool live = false;
    cudaEvent_t last_use = nullptr;  // recorded after the last DMA queued on the block
  };
  std::mutex mu_;
  std::map<const char*, Block> blocks_;  // every block, live or kept, by start address
};

PinnedHostAllocator& pinned_host_allocator();

}  // namespace rv::cuda
