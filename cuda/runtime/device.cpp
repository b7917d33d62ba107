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
  // Clocks are attributes since CUDA 13 dropped them from cudaDeviceProp.
  RV_CUDA_CHECK(cudaDeviceGetAttribute(&d.sm_clock_khz, cudaDevAttrClockRate, index));
  RV_CUDA_CHECK(cudaDeviceGetAttribute(&d.memory_clock_khz, cudaDevAttrMemoryClockRate, index));
  RV_CUDA_CHECK(cudaDeviceGetAttribute(&d.memory_bus_bits, cudaDevAttrGlobalMemoryBusWidth, index));
  return d;
}

int fp32_lanes_per_sm(int major, int minor) {
  if (major == 8 && minor == 0) return 64;  // A100
  if (major >= 8) return 128;               // A10/L4/L40 (8.6, 8.9), H100/H200 (9.0), Blackwell
  return 64;
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
