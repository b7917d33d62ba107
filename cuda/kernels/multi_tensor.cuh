// multi_tensor.cuh: the "multi-tensor apply" layout shared by the AdamW, gradient-norm and
// clipping kernels (device code plus a host helper; included by .cu files only).
//
// The tensors of one call are cut into chunks of kChunk elements; the table lists them in
// order, each entry with `chunk_begin`, the index of its first chunk among all chunks. One
// launch has one block per chunk: block b finds its entry by binary search for the last
// chunk_begin <= b (a few cached reads), then its threads walk that chunk's elements with
// consecutive threads on consecutive addresses. So ~150 parameters of very different sizes
// cost one launch, and every block does about the same work.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/runtime/check.h"

namespace rv::cuda::multi_tensor {

inline constexpr int kThreads = 256;
inline constexpr int64_t kChunk = 64 * kThreads;  // 16384 elements: 64 per thread

// Sets every entry's chunk_begin (entries need `numel` and `chunk_begin` fields); returns the
// total number of chunks (the grid size). Entries with numel 0 get no chunk.
template <class Entry>
int64_t assign_chunks(std::vector<Entry>& entries, const char* op) {
  int64_t total = 0;
  for (Entry& e : entries) {
    e.chunk_begin = total;
    total += (e.numel + kChunk - 1) / kChunk;
  }
  if (total > int64_t(0x7fffffff))
    throw std::invalid_argument(std::string(op) + ": too many elements for one launch");
  return total;
}

// Copies the table to device scratch `dst` (stream-ordered; the host vector may be freed on
// return: a pageable-memory copy is staged before cudaMemcpyAsync returns).
template <class Entry>
void upload(void* dst, const std::vector<Entry>& entries, cudaStream_t stream) {
  RV_CUDA_CHECK(cudaMemcpyAsync(dst, entries.data(), entries.size() * sizeof(Entry), cudaMemcpyHostToDevice, stream));
}

// The entry of chunk `b`: the last one whose chunk_begin <= b (entries without chunks share
// chunk_begin with the next one, which wins).
template <class Entry>
__device__ __forceinline__ int find_entry(const Entry* entries, int count, int64_t b) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (entries[mid].chunk_begin <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace rv::cuda::multi_tensor
