// stream.cpp: per-device compute and side streams, created lazily under a lock.
#include "cuda/runtime/stream.h"

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"

namespace rv::cuda {

namespace {

struct Streams {
  cudaStream_t compute = nullptr;
  cudaStream_t side = nullptr;
};

Streams& streams_of(int device) {
  static std::mutex mu;
  static std::vector<Streams>* all = new std::vector<Streams>();  // never destroyed: tensors may outlive main
  std::lock_guard<std::mutex> lock(mu);
  const int n = device_count();
  if (device < 0 || device >= n)
    throw std::runtime_error("cuda: no device " + std::to_string(device) + " (" + std::to_string(n) + " present)");
  if (all->empty()) all->resize(size_t(n));
  Streams& s = (*all)[size_t(device)];
  if (!s.compute) {
    DeviceGuard g(device);
    RV_CUDA_CHECK(cudaStreamCreateWithFlags(&s.compute, cudaStreamNonBlocking));
    RV_CUDA_CHECK(cudaStreamCreateWithFlags(&s.side, cudaStreamNonBlocking));
  }
  return s;
}

}  // namespace

cudaStream_t compute_stream(int device) { return streams_of(device).compute; }
cudaStream_t side_stream(int device) { return streams_of(device).side; }

void stream_wait(cudaStream_t waiter, cudaStream_t producer) {
  if (waiter == producer) return;
  cudaEvent_t ev;
  RV_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  RV_CUDA_CHECK(cudaEventRecord(ev, producer));
  RV_CUDA_CHECK(cudaStreamWaitEvent(waiter, ev, 0));
  RV_CUDA_CHECK(cudaEventDestroy(ev));  // safe: destruction is deferred until the event completes
}

}  // namespace rv::cuda
