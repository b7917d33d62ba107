// device.h: CUDA device queries and the guard that makes a device current.
#pragma once
#include <cstddef>
#include <string>

namespace rv::cuda {

// Number of usable devices; 0 (and `reason` filled) when the driver or a device is missing.
// Never throws: "no GPU" is a normal state (CI builds with nvcc but runs without a GPU).
int device_count(std::string* reason = nullptr);

struct DeviceInfo {
  std::string name;          // "NVIDIA H100 80GB HBM3"
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  size_t total_memory = 0;   // bytes
  size_t l2_bytes = 0;
  size_t shared_per_block_optin = 0;  // the most shared memory a block can ask for
};
DeviceInfo device_info(int index);

// Makes `index` the current device for this thread for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace rv::cuda
