// memory_stats.h: how many bytes of tensor storage the engine holds now, and at most since the
// last reset (torch.cuda.memory_allocated / max_memory_allocated, for the CPU).
//
//   profile::reset_peak_memory();
//   Tensor loss = step(model, batch);            // forward
//   auto s = profile::memory_stats();           // s.live_bytes: the graph's saved tensors too
//   loss.backward();
//   profile::memory_stats().peak_bytes;          // the most held at any moment of the step
//
// Counted: every Storage::allocate (the requested bytes, not the 64-byte rounding). Not
// counted: memory the engine only wraps (a memory-mapped safetensors file, Storage::wrap), the
// scratch buffers kernels take with plain new/malloc, and the allocator's own overhead. The
// counters are process-wide atomics, so allocations on any thread are seen, and reading them
// costs no lock.
#pragma once
#include <cstdint>

namespace rv::profile {

struct MemoryStats {
  int64_t live_bytes = 0;      // held by storages alive now
  int64_t peak_bytes = 0;      // the most live_bytes has been since the last reset_peak_memory
  int64_t live_storages = 0;   // storages alive now
  int64_t allocations = 0;     // storages allocated since the process started
};

MemoryStats memory_stats();
// Sets the peak to what is live now, so the next peak is of what follows.
void reset_peak_memory();

// Called by Storage (engine/storage.cpp) on every allocation and on its destruction.
void note_storage_alloc(int64_t bytes);
void note_storage_free(int64_t bytes);

}  // namespace rv::profile
