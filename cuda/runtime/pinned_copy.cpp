// pinned_copy.cpp: the double-buffered staging of pinned_copy.h.
#include "cuda/runtime/pinned_copy.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

constexpr size_t kChunk = size_t(32) << 20;  // 32 MiB: large enough to reach full PCIe speed

// Two pinned buffers and an event each ("the DMA that used this buffer is done"). One set for
// the process, behind a mutex: copies from several threads take turns (each is bandwidth-bound).
struct Staging {
  std::mutex mu;
  void* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  size_t cap = 0;

  void ensure(size_t bytes) {
    if (cap >= bytes) return;
    for (int b = 0; b < 2; ++b) {
      if (buf[b]) {
        RV_CUDA_CHECK(cudaEventSynchronize(done[b]));
        RV_CUDA_CHECK(cudaFreeHost(buf[b]));
      }
      RV_CUDA_CHECK(cudaHostAlloc(&buf[b], bytes, cudaHostAllocPortable));
      if (!done[b]) RV_CUDA_CHECK(cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming));
    }
    cap = bytes;
  }
};

Staging& staging() {
  static Staging* s = new Staging();  // never destroyed (pinned memory goes back at exit)
  return *s;
}

}  // namespace

size_t pinned_chunk_bytes() { return kChunk; }

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard g(device);
  Staging& st = staging();
  std::lock_guard<std::mutex> lock(st.mu);
  st.ensure(std::min(nbytes, kChunk));
  cudaStream_t side = side_stream(device), compute = compute_stream(device);
  stream_wait(side, compute);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  int b = 0;
  for (size_t off = 0; off < nbytes; off += kChunk, b ^= 1) {
    const size_t len = std::min(kChunk, nbytes - off);
    RV_CUDA_CHECK(cudaEventSynchronize(st.done[b]));  // the DMA that last read this buffer is over
    std::memcpy(st.buf[b], s + off, len);
    RV_CUDA_CHECK(cudaMemcpyAsync(d + off, st.buf[b], len, cudaMemcpyHostToDevice, side));
    RV_CUDA_CHECK(cudaEventRecord(st.done[b], side));
  }
  stream_wait(compute, side);
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard g(device);
  Staging& st = staging();
  std::lock_guard<std::mutex> lock(st.mu);
  st.ensure(std::min(nbytes, kChunk));
  cudaStream_t side = side_stream(device), compute = compute_stream(device);
  stream_wait(side, compute);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  // Chunk i goes into buffer i % 2; chunk i - 1 is drained while chunk i is in flight.
  size_t prev_off = 0, prev_len = 0;
  int b = 0;
  for (size_t off = 0; off < nbytes; off += kChunk, b ^= 1) {
    const size_t len = std::min(kChunk, nbytes - off);
    RV_CUDA_CHECK(cudaEventSynchronize(st.done[b]));  // buffer b was drained (or never used)
    RV_CUDA_CHECK(cudaMemcpyAsync(st.buf[b], s + off, len, cudaMemcpyDeviceToHost, side));
    RV_CUDA_CHECK(cudaEventRecord(st.done[b], side));
    if (prev_len > 0) {
      RV_CUDA_CHECK(cudaEventSynchronize(st.done[b ^ 1]));
      std::memcpy(d + prev_off, st.buf[b ^ 1], prev_len);
    }
    prev_off = off;
    prev_len = len;
  }
  RV_CUDA_CHECK(cudaEventSynchronize(st.done[b ^ 1]));
  std::memcpy(d + prev_off, st.buf[b ^ 1], prev_len);
}

}  // namespace rv::cuda
