// device.cpp: parse_device, the text form of a device ("cpu", "cuda", "cuda:1").
#include "engine/device.h"

#include <stdexcept>

namespace rv {

Device parse_device(const std::string& text) {
  if (text == "cpu") return cpu_device();
  if (text == "cuda") return cuda_device(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8) {
    int index = 0;
    for (size_t i = 5; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') index = -1;
      if (index < 0) break;
      index = index * 10 + (text[i] - '0');
    }
    if (index >= 0) return cuda_device(index);
  }
  throw std::invalid_argument("device '" + text + "': expected cpu, cuda or cuda:N");
}

}  // namespace rv
