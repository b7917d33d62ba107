// host_allocator.cpp: the size-class free lists behind host_alloc (see host_allocator.h).
#include "engine/cpu/host_allocator.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace rv::cpu {

namespace {

constexpr size_t kAlign = 64;  // one cache line, and enough for any AVX-512 load
constexpr size_t kDefaultCapMiB = 2048;

// 64-byte multiple for small sizes (0 -> 64, so every block is unique); for large ones the next
// of 8 steps per power of two: n in [2^p, 2^(p+1)) rounds up to a multiple of 2^(p-3).
size_t size_class(size_t nbytes) {
  if (nbytes < kMinCachedBytes) return nbytes == 0 ? kAlign : (nbytes + kAlign - 1) / kAlign * kAlign;
  int p = 63 - __builtin_clzll(static_cast<unsigned long long>(nbytes));
  const size_t step = size_t(1) << (p - 3);
  return (nbytes + step - 1) / step * step;
}

bool env_enabled() {
  const char* v = std::getenv("RV_HOST_CACHE");
  return !(v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0));
}

size_t env_cap_bytes() {
  const char* v = std::getenv("RV_HOST_CACHE_MB");
  if (!v || !*v) return kDefaultCapMiB << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(v, &end, 10);
  if (*end != '\0')
    throw std::invalid_argument(std::string("host allocator: RV_HOST_CACHE_MB must be a whole number of MiB, got \"") +
                                v + "\"");
  return static_cast<size_t>(mib) << 20;
}

// aligned_alloc, and on failure one retry after handing the cache back.
void* os_alloc(size_t bytes);

class HostCache {
 public:
  HostCache() : enabled_(env_enabled()), cap_(env_cap_bytes()) {}

  // A kept block of exactly `cls` bytes, or nullptr (then the caller goes to the OS).
  void* take(size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_size_.find(cls);
    if (it == by_size_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    // The most recently kept block of the class: its pages are the likeliest to still be in cache.
    auto lru_it = it->second.back();
    it->second.pop_back();
    void* p = lru_it->ptr;
    cached_bytes_ -= cls;
    lru_.erase(lru_it);
    ++hits_;
    return p;
  }

  // Keeps a freed block of `cls` bytes, dropping the oldest kept blocks if the cap needs it.
  // Returns false when it cannot be kept (caching off, or the block alone exceeds the cap).
  bool keep(void* p, size_t cls) {
    std::vector<void*> to_free;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!enabled_ || cls > cap_) return false;
      while (cached_bytes_ + cls > cap_) to_free.push_back(evict_oldest_locked());
      lru_.push_back(Entry{p, cls});
      by_size_[cls].push_back(std::prev(lru_.end()));
      cached_bytes_ += cls;
    }
    for (void* q : to_free) std::free(q);  // outside the lock: munmap is slow
    return true;
  }

  void release_all() { trim_to(0); }

  void set_cap(size_t cap) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cap_ = cap;
    }
    trim_to(cap);
  }

  void set_enabled(bool on) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      enabled_ = on;
    }
    if (!on) trim_to(0);
  }

  HostCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return HostCacheStats{cached_bytes_, lru_.size(), hits_, misses_, cap_, enabled_};
  }

 private:
  struct Entry {
    void* ptr;
    size_t bytes;
  };

  void trim_to(size_t limit) {
    std::vector<void*> to_free;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (cached_bytes_ > limit) to_free.push_back(evict_oldest_locked());
    }
    for (void* q : to_free) std::free(q);
  }

  // Unlinks the least recently kept block and returns it (the caller frees it).
  void* evict_oldest_locked() {
    const Entry e = lru_.front();
    auto& v = by_size_[e.bytes];
    // The oldest block of a class sits at the front of the class's list (blocks are appended).
    v.erase(v.begin());
    if (v.empty()) by_size_.erase(e.bytes);
    lru_.pop_front();
    cached_bytes_ -= e.bytes;
    return e.ptr;
  }

  std::mutex mu_;
  bool enabled_;
  size_t cap_;
  size_t cached_bytes_ = 0;
  size_t hits_ = 0, misses_ = 0;
  std::list<Entry> lru_;  // oldest first
  std::unordered_map<size_t, std::vector<std::list<Entry>::iterator>> by_size_;
};

// Never destroyed: tensors held by static objects may be freed after main returns, and must still
// find the cache (the OS takes the memory back at exit anyway).
HostCache& cache() {
  static HostCache* c = new HostCache();
  return *c;
}

void* os_alloc(size_t bytes) {
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) {
    cache().release_all();
    p = std::aligned_alloc(kAlign, bytes);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

// RV_HOST_ALLOC_POISON=1: every block handed out, of any size, is first filled with 0xFF bytes
// (NaN as f32 / f64, -1 as integers), so that a kernel that reads memory it never wrote shows up
// as NaN in a test instead of passing on the zeros of fresh pages.
bool poison_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("RV_HOST_ALLOC_POISON");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void* poisoned(void* p, size_t bytes) {
  if (poison_enabled()) std::memset(p, 0xFF, bytes);
  return p;
}

}  // namespace

size_t host_alloc_size(size_t nbytes) { return size_class(nbytes); }

void* host_alloc(size_t nbytes) {
  // Rounding up must not wrap around (no machine has 2^63 bytes anyway).
  if (nbytes > (std::numeric_limits<size_t>::max() >> 1)) throw std::bad_alloc();
  const size_t cls = size_class(nbytes);
  if (cls >= kMinCachedBytes)
    if (void* p = cache().take(cls)) return poisoned(p, cls);
  return poisoned(os_alloc(cls), cls);
}

void host_free(void* p, size_t nbytes) {
  if (!p) return;
  const size_t cls = size_class(nbytes);
  if (cls >= kMinCachedBytes && cache().keep(p, cls)) return;
  std::free(p);
}

void host_release_cached() { cache().release_all(); }
HostCacheStats host_cache_stats() { return cache().stats(); }
void host_cache_set_cap(size_t cap_bytes) { cache().set_cap(cap_bytes); }
void host_cache_set_enabled(bool enabled) { cache().set_enabled(enabled); }

}  // namespace rv::cpu
