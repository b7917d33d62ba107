// host_allocator.h: a caching allocator for large host blocks (the memory behind tensors).
//
// Why: glibc serves a block above its mmap threshold (at most 32 MiB) with a fresh mmap and
// returns it with munmap on free. The kernel then hands out zeroed pages one page fault at a
// time on first touch, so an op with a fresh 40-150 MB output (gelu, softmax, attention in a
// training step) spends a large part of its time in the kernel (gelu (32,197,1536): ~2200
// faults and ~15% of the call's CPU time). A training step allocates the same sizes step after
// step, so keeping freed large blocks and handing them back out skips those faults entirely.
//
// What: blocks of at least kMinCachedBytes are rounded up to a size class (8 classes per power
// of two: at most 12.5% slack) and, when freed, kept on that class's free list instead of going
// back to the OS. An allocation takes a kept block of its class if there is one. The bytes kept
// are capped (RV_HOST_CACHE_MB, default 2048); a free that would exceed the cap first drops the
// least recently kept blocks. Small blocks go straight to aligned_alloc / free: glibc's own free
// lists already serve them without system calls.
//
// Thread-safe (one mutex; taken once per large allocation, which costs far more than the lock).
// RV_HOST_CACHE=0 in the environment turns caching off (every block goes to the OS and back, as
// before), e.g. to check a memory measurement or to hunt a use-after-free with a tool.
// host_release_cached() hands every kept block back to the OS (also done automatically when an
// allocation fails, before giving up). RV_HOST_ALLOC_POISON=1 fills every block handed out with
// 0xFF bytes (NaN as floats): a test run with it catches a kernel that reads memory it never
// wrote, which recycled blocks would otherwise hide behind stale values.
#pragma once
#include <cstddef>

namespace rv::cpu {

// Blocks smaller than this are never cached.
inline constexpr size_t kMinCachedBytes = size_t(1) << 20;  // 1 MiB

// 64-byte aligned, uninitialised memory of at least `nbytes` (0 gives a valid, unique block).
// Throws std::bad_alloc when the OS refuses even after the cache is released.
void* host_alloc(size_t nbytes);
// Frees a block from host_alloc; `nbytes` must be the size it was allocated with.
void host_free(void* p, size_t nbytes);

// The size a request of `nbytes` actually gets (its size class); host_free accepts either.
size_t host_alloc_size(size_t nbytes);

// Hands every kept block back to the OS.
void host_release_cached();

struct HostCacheStats {
  size_t cached_bytes = 0;   // bytes kept on the free lists now
  size_t cached_blocks = 0;  // blocks kept now
  size_t hits = 0;           // large allocations served from the cache (since start)
  size_t misses = 0;         // large allocations that went to the OS
  size_t cap_bytes = 0;      // the cap on cached_bytes
  bool enabled = true;       // false under RV_HOST_CACHE=0 (or set_enabled(false))
};
HostCacheStats host_cache_stats();

// For tests and tools: change the cap / switch caching on or off at run time (both release
// what no longer fits). The environment sets the initial values.
void host_cache_set_cap(size_t cap_bytes);
void host_cache_set_enabled(bool enabled);

}  // namespace rv::cpu
