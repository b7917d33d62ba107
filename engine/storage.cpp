// storage.cpp: aligned host allocation for tensors, counted in profile::memory_stats.
#include "engine/storage.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/profile/memory_stats.h"

namespace rv {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  if (!device.is_cpu())
    throw std::runtime_error("Storage::allocate: device " + device.str() +
                             " is not available in this build (CPU only)");
  auto s = std::shared_ptr<Storage>(new Storage());
  // 64-byte alignment: one cache line, and enough for any AVX-512 load.
  size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  s->data_ = std::aligned_alloc(64, rounded);
  if (!s->data_) throw std::bad_alloc();
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->release_ = [](void* p) { std::free(p); };
  s->counted_ = true;
  profile::note_storage_alloc(int64_t(nbytes));
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::function<void(void*)> release,
                                       Device device) {
  auto s = std::shared_ptr<Storage>(new Storage());
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (release_ && data_) release_(data_);
  if (counted_) profile::note_storage_free(int64_t(nbytes_));
}

}  // namespace rv
