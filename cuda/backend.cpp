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
