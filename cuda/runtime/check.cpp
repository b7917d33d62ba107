// check.cpp: the slow paths of RV_CUDA_CHECK / RV_CUDA_CHECK_LAUNCH (see check.h).
#include "cuda/runtime/check.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace rv::cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error in ") + what + " at " + file + ":" + std::to_string(line) + ": " +
                           cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("ROPEVIT_CUDA_SYNC");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();  // launch errors: bad configuration, no kernel image for this GPU
  if (err == cudaSuccess && sync_after_launch()) err = cudaDeviceSynchronize();  // faults inside the kernel
  if (err != cudaSuccess) throw_cuda_error(err, (std::string("kernel ") + kernel).c_str(), file, line);
}

}  // namespace rv::cuda
