// device.cpp: device count (cached once per process), properties, DeviceGuard.
#include "cuda/runtime/device.h"

#include <cuda_runtime.h>

#include <mutex>

#include "cuda/runtime/check.h"

namespace rv::cuda {

int device_count(std::string* reason) {
  static int count = 0;
  static std::string why;
  static std::once_flag once;
  std::call_once(once, [] {
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
      count = 0;
      cudaGetLastError();  // clear the last-error slot so later checks start clean
    } else if (count == 0) {
      why = "cudaGetDeviceCount: 0 devices";
    }
  });
  if (reason) *reason = why;
  return count;
}

DeviceInfo device_info(int index) {
  cudaDeviceProp p{};
  RV_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceInfo d;
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.total_memory = p.totalGlobalMem;
  d.l2_bytes = size_t(p.l2CacheSize);
  d.shared_per_block_optin = p.sharedMemPerBlockOptin;
  return d;
}

DeviceGuard::DeviceGuard(int index) {
  RV_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index) RV_CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);  // no throw in a destructor
}

}  // namespace rv::cuda
