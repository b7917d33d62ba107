// block_pool.h: the caching device allocator's policy, free of CUDA calls: size classes, one free
// list per (stream, size class), the wait for work on other streams (record_stream), the
// out-of-memory retry and the statistics. Every device call goes through DeviceMemoryCalls, so a
// host unit test (tests/unit/test_block_pool.cpp) drives the very same code with fake memory and
// fake events; cuda/allocator/caching_allocator.cpp plugs in cudaMalloc, cudaFree and events.
// Header-only so that the CPU-only build (which compiles nothing under cuda/) can test it.
//
// Reuse on the block's own stream needs no sync: every kernel that used the block was queued on
// that stream before any kernel of its next owner. Work on ANOTHER stream (NCCL's stream running
// a collective on a gradient bucket, ...) is not ordered that way, so its caller says so with
// record_stream(p, s) (PyTorch's Tensor.record_stream). When such a block is freed, the pool
// records one event on each of those streams and sets the block aside; allocate() polls the
// events (never waits) and moves the block to its free list once all have completed. Only
// empty_cache() (and so the out-of-memory retry), which must give every cached block back, waits.
//
// Not thread-safe by itself: CachingAllocator holds a mutex around every call.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"

namespace rv::cuda {

// Opaque handles: cudaStream_t and cudaEvent_t in the real allocator, anything in a fake.
using StreamHandle = const void*;
using EventHandle = void*;

// What the pool needs from a device.
class DeviceMemoryCalls {
 public:
  virtual ~DeviceMemoryCalls() = default;
  // `bytes` of fresh device memory, or nullptr when the device is out of memory (other errors throw).
  virtual void* malloc_bytes(size_t bytes) = 0;
  virtual void free_bytes(void* p) = 0;
  // An event recorded now on `stream`: it completes when all work queued there so far has.
  virtual EventHandle record_event(StreamHandle stream) = 0;
  virtual bool event_done(EventHandle e) = 0;     // polls, never blocks
  virtual void event_wait(EventHandle e) = 0;     // blocks the host until e completes
  virtual void release_event(EventHandle e) = 0;  // e may be handed out again (events are pooled)
  // For the out-of-memory message, e.g. "device free 312 MiB of 81559 MiB" ("" if unknown).
  virtual std::string memory_report() { return ""; }
};

class BlockPool {
 public:
  // `caching` false: the plain mode (ROPEVIT_CUDA_ALLOC=plain): every allocate is a malloc_bytes
  // and every free a free_bytes (after waiting for other streams). `name` starts error messages.
  BlockPool(DeviceMemoryCalls& calls, bool caching, std::string name)
      : calls_(calls), caching_(caching), name_(std::move(name)) {
    stats_.caching = caching;
  }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // Requests are rounded up to a size class: multiples of 512 bytes below 1 MiB, then 8 classes
  // per power of two (at most 12.5% slack). 0 bytes gets the smallest class (a unique block).
  static size_t size_class(size_t nbytes) {
    if (nbytes < kLargeFrom) return nbytes == 0 ? kSmallStep : (nbytes + kSmallStep - 1) / kSmallStep * kSmallStep;
    const int p = 63 - __builtin_clzll(static_cast<unsigned long long>(nbytes));
    const size_t step = size_t(1) << (p - 3);
    return (nbytes + step - 1) / step * step;
  }

  // At least `nbytes` for work queued on `stream`.
  void* allocate(size_t nbytes, StreamHandle stream) {
    const size_t cls = caching_ ? size_class(nbytes) : std::max<size_t>(nbytes, 1);
    ++stats_.allocations;
    void* p = nullptr;
    if (caching_) {
      if (!waiting_.empty()) poll_waiting();
      auto it = free_.find(FreeKey{stream, cls});
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();  // the most recently freed: likeliest to be in L2 still
        it->second.pop_back();
        ++stats_.cache_hits;
      }
    }
    if (!p) p = malloc_with_retry(cls);
    live_.emplace(address(p), Block{cls, nbytes, stream, {}});
    stats_.allocated += cls;
    stats_.requested += nbytes;
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    return p;
  }

  // `p` from allocate(), or nullptr.
  void free(void* p) {
    if (!p) return;
    auto it = live_.find(address(p));
    if (it == live_.end())
      throw std::logic_error(name_ + " allocator: free of a pointer it did not hand out (double free?)");
    Block b = std::move(it->second);
    live_.erase(it);
    stats_.allocated -= b.size;
    stats_.requested -= b.requested;
    std::vector<EventHandle> events;
    for (StreamHandle s : b.used_on) events.push_back(calls_.record_event(s));
    if (!caching_) {  // plain mode: nothing is cached, so wait here for the other streams
      for (EventHandle e : events) {
        calls_.event_wait(e);
        calls_.release_event(e);
      }
      calls_.free_bytes(p);
      stats_.reserved -= b.size;
      return;
    }
    if (events.empty()) {
      free_[FreeKey{b.stream, b.size}].push_back(p);
      return;
    }
    waiting_.push_back(Waiting{p, b.size, b.stream, std::move(events)});
    stats_.waiting_for_streams += b.size;
  }

  // Work queued on `stream` (not the block's own) uses the live block holding `p` (any address
  // inside it: a view's data pointer will do). Its next owner gets it only after that work.
  void record_stream(const void* p, StreamHandle stream) {
    auto it = live_.upper_bound(address(p));
    if (it == live_.begin() || address(p) >= std::prev(it)->first + std::prev(it)->second.size)
      throw std::logic_error(name_ + " allocator: record_stream of a pointer inside no live block");
    Block& b = std::prev(it)->second;
    if (stream == b.stream) return;  // stream order already covers it
    if (std::find(b.used_on.begin(), b.used_on.end(), stream) == b.used_on.end()) b.used_on.push_back(stream);
  }

  // Gives every cached block back to the device (waiting for blocks whose streams are still busy).
  void empty_cache() {
    for (Waiting& w : waiting_) {
      for (EventHandle e : w.events) {
        calls_.event_wait(e);
        calls_.release_event(e);
      }
      w.events.clear();
    }
    poll_waiting();  // all done now: onto the free lists
    for (auto& [key, blocks] : free_) {
      for (void* p : blocks) {
        calls_.free_bytes(p);
        stats_.reserved -= key.second;
      }
    }
    free_.clear();
  }

  backend::MemoryStats stats() const { return stats_; }
  void reset_peak() {
    stats_.peak_allocated = stats_.allocated;
    stats_.peak_reserved = stats_.reserved;
  }

 private:
  static constexpr size_t kSmallStep = 512;              // cudaMalloc aligns to 256; 512 keeps classes few
  static constexpr size_t kLargeFrom = size_t(1) << 20;  // from 1 MiB: 8 classes per power of two

  struct Block {
    size_t size;       // its size class
    size_t requested;  // what the caller asked for
    StreamHandle stream;
    std::vector<StreamHandle> used_on;  // other streams that used it (record_stream)
  };
  // A freed block whose other streams may still be using it.
  struct Waiting {
    void* p;
    size_t size;
    StreamHandle stream;
    std::vector<EventHandle> events;  // one per stream in used_on, not yet seen complete
  };
  using FreeKey = std::pair<StreamHandle, size_t>;

  static uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }
  static std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

  // Drops the completed events; a block with none left goes onto its free list (in free order).
  void poll_waiting() {
    size_t kept = 0;
    for (size_t i = 0; i < waiting_.size(); ++i) {
      Waiting& w = waiting_[i];
      auto done = [this](EventHandle e) {
        if (!calls_.event_done(e)) return false;
        calls_.release_event(e);
        return true;
      };
      w.events.erase(std::remove_if(w.events.begin(), w.events.end(), done), w.events.end());
      if (w.events.empty()) {
        free_[FreeKey{w.stream, w.size}].push_back(w.p);
        stats_.waiting_for_streams -= w.size;
      } else {
        if (kept != i) waiting_[kept] = std::move(w);
        ++kept;
      }
    }
    waiting_.resize(kept);
  }

  // A fresh block; on out of memory the cache is emptied and the call retried once.
  void* malloc_with_retry(size_t bytes) {
    void* p = calls_.malloc_bytes(bytes);
    if (!p && caching_) {
      empty_cache();
      p = calls_.malloc_bytes(bytes);
    }
    if (!p) {
      const std::string report = calls_.memory_report();
      throw std::runtime_error(name_ + ": out of memory allocating " + std::to_string(bytes) + " bytes (tensors hold " +
                               mib(stats_.allocated) + ", reserved " + mib(stats_.reserved) +
                               (report.empty() ? "" : ", " + report) + ")");
    }
    ++stats_.device_mallocs;
    stats_.reserved += bytes;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
    return p;
  }

  DeviceMemoryCalls& calls_;
  bool caching_;
  std::string name_;
  std::map<uintptr_t, Block> live_;  // by start address, so record_stream finds a block from inside it
  std::map<FreeKey, std::vector<void*>> free_;
  std::vector<Waiting> waiting_;
  backend::MemoryStats stats_;
};

}  // namespace rv::cuda
