// device.h: where a tensor's memory lives: the host (cpu) or a CUDA device (cuda:<index>).
// CPU kernels live in engine/cpu; other devices are reached through engine/backend.h.
#pragma once
#include <cstdint>
#include <string>

namespace rv {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  std::string str() const { return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index); }
};

inline Device cpu_device() { return Device{}; }
inline Device cuda_device(int index = 0) { return Device{DeviceType::cuda, index}; }

// "cpu", "cuda" (= cuda:0) or "cuda:N", as torch.device takes them; anything else throws
// std::invalid_argument quoting the text and the accepted forms.
Device parse_device(const std::string& text);

}  // namespace rv
