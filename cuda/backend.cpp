// backend.cpp: the CUDA backend's devices, memory (through the caching allocator) and host <->
// device copies (through pinned staging). The ops live in backend_<family>.cpp files; the class
// is declared in cuda_backend.h. An op the class does not override meets the interface's default
// and throws "<op>: not implemented on cuda:0 yet".
#include <cuda_runtime.h>

#include <string>

#include "cuda/allocator/caching_allocator.h"
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
void CudaBackend::copy_from_host(void* dst, const void* src, size_t nbytes, int index) {
  copy_host_to_device(dst, src, nbytes, index);
}
void CudaBackend::copy_to_host(void* dst, const void* src, size_t nbytes, int index) {
  copy_device_to_host(dst, src, nbytes, index);
}
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
