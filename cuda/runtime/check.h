// check.h: error checking for CUDA runtime calls and kernel launches.
//
//   RV_CUDA_CHECK(cudaMalloc(&p, n));          // throws, naming the call, file and line
//   my_kernel<<<grid, block, 0, s>>>(...);
//   RV_CUDA_CHECK_LAUNCH("my_kernel");         // names the kernel, file and line
//
// Kernel errors are asynchronous: a fault inside a kernel surfaces at some later call. With
// ROPEVIT_CUDA_SYNC=1 in the environment every launch check also waits for the device, so the
// error is reported at the launch that caused it (slow; for debugging).
#pragma once
#include <cuda_runtime.h>

namespace rv::cuda {

// Throws std::runtime_error "CUDA error in <what> at <file>:<line>: <name>: <description>".
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

// After a launch: checks cudaGetLastError (and, under ROPEVIT_CUDA_SYNC=1, synchronises).
void check_launch(const char* kernel, const char* file, int line);

// True when ROPEVIT_CUDA_SYNC=1 (read once).
bool sync_after_launch();

}  // namespace rv::cuda

#define RV_CUDA_CHECK(call)                                                            \
  do {                                                                                 \
    cudaError_t rv_cuda_err_ = (call);                                                 \
    if (rv_cuda_err_ != cudaSuccess)                                                   \
      ::rv::cuda::throw_cuda_error(rv_cuda_err_, #call, __FILE__, __LINE__);           \
  } while (0)

#define RV_CUDA_CHECK_LAUNCH(kernel_name) ::rv::cuda::check_launch(kernel_name, __FILE__, __LINE__)
