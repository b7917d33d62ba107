// storage.cpp: allocation for tensors: host memory through the caching host allocator, counted
// in profile::memory_stats (bytes held by live tensors, not bytes kept in the cache); device
// memory through the device's backend (engine/backend.h).
#include "engine/storage.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/cpu/host_allocator.h"
#include "engine/profile/memory_stats.h"

namespace rv {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  auto s = std::shared_ptr<Storage>(new Storage());
  if (!device.is_cpu()) {
    backend::DeviceBackend& b = backend::get(device);  // throws, naming the device, when absent
    s->data_ = b.allocate(nbytes, device.index);
    s->nbytes_ = nbytes;
    s->device_ = device;
    const int index = device.index;
    s->release_ = [&b, index](void* p) { b.deallocate(p, index); };
    return s;
  }
  // 64-byte aligned; large blocks are recycled by the host cache (cpu/host_allocator.h).
  s->data_ = cpu::host_alloc(nbytes);
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->release_ = [nbytes](void* p) { cpu::host_free(p, nbytes); };
  s->counted_ = true;
  profile::note_storage_alloc(int64_t(nbytes));
  return s;
}

std::shared_ptr<Storage> Storage::allocate_pinned(size_t nbytes, Device for_device) {
  if (for_device.is_cpu()) throw std::invalid_argument("pin_memory: pinned for which device? (got cpu)");
  backend::DeviceBackend* bp = nullptr;
  try {
    bp = &backend::get(for_device);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("pin_memory: page-locked host memory needs a CUDA device: ") + e.what());
  }
  backend::DeviceBackend& b = *bp;
  auto s = std::shared_ptr<Storage>(new Storage());
  s->data_ = b.allocate_pinned_host(nbytes);
  s->nbytes_ = nbytes;
  s->device_ = cpu_device();  // host memory: CPU kernels read and write it as any other
  s->pinned_ = true;
  s->release_ = [&b](void* p) { b.free_pinned_host(p); };
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
