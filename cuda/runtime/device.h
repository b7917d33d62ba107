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
  int sm_clock_khz = 0;               // boost clock
  int memory_clock_khz = 0;
  int memory_bus_bits = 0;
};
DeviceInfo device_info(int index);
// FP32 FMA lanes per multiprocessor (128 on sm_80's successors sm_86/89/90, 64 on sm_80 itself).
int fp32_lanes_per_sm(int major, int minor);

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
