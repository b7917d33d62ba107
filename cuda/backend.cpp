// backend.cpp: the CUDA backend's devices, memory (through the caching allocator) and host <->
// device copies (through pinned staging). The ops live in backend_<family>.cpp files; the class
// is declared in cuda_backend.h. An op the class does not override meets the interface's default
// and throws "<op>: not implemented on cuda:0 yet".
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda/allocator/caching_allocator.h"
#include "cuda/allocator/pinned_host_allocator.h"
#include "cuda/cuda_backend.h"
#include "cuda/runtime/check.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/pinned_copy.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

int CudaBackend::device_count() const { return cuda::device_count(); }
std::string CudaBackend::unavailable_reason() const {
  std::string why;
  cuda::device_count(&why);
  return why;
}
std::string CudaBackend::device_name(int index) const { return device_info(index).name; }
backend::DeviceProperties CudaBackend::properties(int index) const {
  const DeviceInfo d = device_info(index);
  backend::DeviceProperties p;
  p.name = d.name;
  p.major = d.major;
  p.minor = d.minor;
  p.multiprocessors = d.multiprocessors;
  p.total_memory = d.total_memory;
  p.sm_clock_ghz = d.sm_clock_khz * 1e-6;
  // DDR: two transfers per memory clock, bus width in bits.
  p.memory_gbps = 2.0 * d.memory_clock_khz * 1e3 * (d.memory_bus_bits / 8.0) * 1e-9;
  p.fp32_tflops = d.multiprocessors * fp32_lanes_per_sm(d.major, d.minor) * 2.0 * p.sm_clock_ghz * 1e-3;
  return p;
}

void CudaBackend::synchronize(int index) {
  DeviceGuard g(index);
  RV_CUDA_CHECK(cudaStreamSynchronize(compute_stream(index)));
  RV_CUDA_CHECK(cudaStreamSynchronize(side_stream(index)));
}

void* CudaBackend::allocate(size_t nbytes, int index) {
  return device_allocator(index).allocate(nbytes, compute_stream(index));
}
void CudaBackend::deallocate(void* p, int index) { device_allocator(index).free(p); }
void CudaBackend::memset(void* dst, int byte, size_t nbytes, int index) {
  DeviceGuard g(index);
  RV_CUDA_CHECK(cudaMemsetAsync(dst, byte, nbytes, compute_stream(index)));
}
// From pinned memory a copy is one DMA on the side stream; from pageable memory it goes through
// the staging buffers (pinned_copy.cpp). Either way the compute stream waits for it on the
// device, and the side stream first waits for the compute stream (dst may be a block that work
// queued there has just freed).
namespace {
void queue_pinned_dma(void* dst, const void* src, size_t nbytes, int index, cudaMemcpyKind kind) {
  DeviceGuard g(index);
  cudaStream_t side = side_stream(index), compute = compute_stream(index);
  stream_wait(side, compute);
  RV_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, side));
  pinned_host_allocator().record_use(kind == cudaMemcpyHostToDevice ? src : dst, side);
  stream_wait(compute, side);
}
}  // namespace

void CudaBackend::copy_from_host(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes > 0 && pinned_host_allocator().contains(src, nbytes)) {
    queue_pinned_dma(dst, src, nbytes, index, cudaMemcpyHostToDevice);
    DeviceGuard g(index);
    RV_CUDA_CHECK(cudaStreamSynchronize(side_stream(index)));  // complete for the host, as promised
    return;
  }
  copy_host_to_device(dst, src, nbytes, index);
}
void CudaBackend::copy_from_host_async(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes > 0 && pinned_host_allocator().contains(src, nbytes)) {
    queue_pinned_dma(dst, src, nbytes, index, cudaMemcpyHostToDevice);
    return;
  }
  copy_host_to_device(dst, src, nbytes, index);  // pageable: staged, complete on return anyway
}
void CudaBackend::copy_to_host(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes > 0 && pinned_host_allocator().contains(dst, nbytes)) {
    queue_pinned_dma(dst, src, nbytes, index, cudaMemcpyDeviceToHost);
    DeviceGuard g(index);
    RV_CUDA_CHECK(cudaStreamSynchronize(side_stream(index)));
    return;
  }
  copy_device_to_host(dst, src, nbytes, index);
}
void* CudaBackend::allocate_pinned_host(size_t nbytes) {
  std::string why;
  if (cuda::device_count(&why) == 0) throw std::runtime_error("pin_memory: page-locked memory needs a CUDA device: " + why);
  return pinned_host_allocator().allocate(nbytes);
}
void CudaBackend::free_pinned_host(void* p) { pinned_host_allocator().free(p); }
void CudaBackend::copy_on_device(void* dst, const void* src, size_t nbytes, int index) {
  DeviceGuard g(index);
  RV_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, compute_stream(index)));
}
backend::MemoryStats CudaBackend::memory_stats(int index) { return device_allocator(index).stats(); }
void CudaBackend::reset_peak_stats(int index) { device_allocator(index).reset_peak(); }
void CudaBackend::empty_cache(int index) { device_allocator(index).empty_cache(); }

backend::DeviceBackend* cuda_backend() {
  static CudaBackend* b = new CudaBackend();  // lives for the whole program, like the registry
  return b;
}

}  // namespace rv::cuda
