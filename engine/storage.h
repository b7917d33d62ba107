// storage.h: a reference-counted block of memory that one or more tensors view.
//
// Views (reshape, permute, narrow, ...) share a Storage and differ only in offset, shape and
// strides. The storage also carries the version counter that autograd uses to refuse an
// in-place write to memory that a recorded op saved for its backward pass.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/device.h"

namespace rv {

class Storage {
 public:
  // Allocates `nbytes` of uninitialised memory on `device`: 64-byte aligned host memory (counted
  // in profile::memory_stats, engine/profile/memory_stats.h), or device memory from the device's
  // backend (engine/backend.h; its own statistics).
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device = Device{});
  // Host memory that is page-locked (pinned) for `for_device`'s backend, whose copy engines then
  // read and write it directly. Throws, saying why, without such a backend or device.
  static std::shared_ptr<Storage> allocate_pinned(size_t nbytes, Device for_device = cuda_device(0));
  // Wraps memory owned by someone else (an mmap, a Python buffer); `release` runs on destruction.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::function<void(void*)> release,
                                       Device device = Device{});
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }  // host memory, page-locked (allocate_pinned)

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
  bool pinned_ = false;
  bool counted_ = false;  // allocated here, so in profile::memory_stats (wrapped memory is not)
  std::atomic<uint64_t> version_{0};
};

}  // namespace rv
