// cuda_backend.h: the CUDA implementation of engine/backend.h's DeviceBackend.
//
// One class, its methods spread over several files so that each op family reads on its own:
//   backend.cpp            devices, memory (the caching allocator), host <-> device copies
//   backend_basic_ops.cpp  strided copy, fill, add/sub/mul/div, sum of all elements
//   backend_<family>.cpp   one file per further op family (softmax, layernorm, rope, matmul, ...)
// Each method checks its arguments, makes the device current, allocates outputs and calls the
// plain C++ launcher of a kernel in cuda/kernels/ on the device's compute stream. Only this
// folder includes CUDA headers; engine/ sees the class through the DeviceBackend interface.
#pragma once
#include "engine/backend.h"
#include "engine/tensor.h"

namespace rv::cuda {

class CudaBackend final : public backend::DeviceBackend {
 public:
  DeviceType type() const override { return DeviceType::cuda; }

  // ---- devices and memory (backend.cpp) ------------------------------------------------------
  int device_count() const override;
  std::string unavailable_reason() const override;
  std::string device_name(int index) const override;
  void synchronize(int index) override;
  void* allocate(size_t nbytes, int index) override;
  void deallocate(void* p, int index) override;
  void memset(void* dst, int byte, size_t nbytes, int index) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes, int index) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes, int index) override;
  void copy_on_device(void* dst, const void* src, size_t nbytes, int index) override;
  backend::MemoryStats memory_stats(int index) override;
  void reset_peak_stats(int index) override;
  void empty_cache(int index) override;

  // ---- basic ops (backend_basic_ops.cpp) ------------------------------------------------------
  void copy_strided(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& dst, double value) override;
  Tensor binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor sum_all(const Tensor& x) override;

  // ---- matmul (backend_matmul.cpp) -----------------------------------------------------------
  void set_matmul_impl(MatmulImpl impl) override;
  MatmulImpl matmul_impl() const override;
  Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu) override;
  Tensor column_sum(const Tensor& x) override;
};

// Argument helpers shared by the backend_*.cpp files.
// Element strides of `t` read as `shape` (t broadcast to it: stride 0 in the broadcast dims).
Shape broadcast_strides_to(const Tensor& t, const Shape& shape);
// The broadcast of two shapes; throws naming `op` when they do not broadcast.
Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);
// Throws "<op>: dtype X is not implemented on cuda:N yet (f32 and f64 are)" for other dtypes.
void require_float32_or_64(const Tensor& t, const char* op);

}  // namespace rv::cuda
