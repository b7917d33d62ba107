// memory_stats.cpp: the atomic counters behind memory_stats().
#include "engine/profile/memory_stats.h"

#include <atomic>

namespace rv::profile {

namespace {
std::atomic<int64_t> g_live{0}, g_peak{0}, g_storages{0}, g_allocations{0};

// peak = max(peak, value), lock-free: retry while another thread raised the peak in between.
void raise_peak(int64_t value) {
  int64_t seen = g_peak.load(std::memory_order_relaxed);
  while (value > seen && !g_peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}
}  // namespace

MemoryStats memory_stats() {
  MemoryStats s;
  s.live_bytes = g_live.load(std::memory_order_relaxed);
  s.peak_bytes = g_peak.load(std::memory_order_relaxed);
  s.live_storages = g_storages.load(std::memory_order_relaxed);
  s.allocations = g_allocations.load(std::memory_order_relaxed);
  return s;
}

void reset_peak_memory() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

void note_storage_alloc(int64_t bytes) {
  // fetch_add returns the value before: the new total is what may be a new peak.
  raise_peak(g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  g_storages.fetch_add(1, std::memory_order_relaxed);
  g_allocations.fetch_add(1, std::memory_order_relaxed);
}

void note_storage_free(int64_t bytes) {
  g_live.fetch_sub(bytes, std::memory_order_relaxed);
  g_storages.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace rv::profile
