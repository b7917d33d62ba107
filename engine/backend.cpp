// backend.cpp: the backend registry, and the one place in engine/ that knows whether the CUDA
// backend was compiled in (RV_HAVE_CUDA, set by CMake only when cuda/ is built).
#include "engine/backend.h"

#include <array>
#include <mutex>
#include <stdexcept>

#include "engine/tensor.h"

#ifdef RV_HAVE_CUDA
namespace rv::cuda {
// Defined in cuda/backend.cpp: the CUDA backend (making it queries no device yet).
backend::DeviceBackend* cuda_backend();
}  // namespace rv::cuda
#endif

namespace rv::backend {

namespace {

constexpr size_t kTypes = 2;  // DeviceType::cpu, DeviceType::cuda

std::array<DeviceBackend*, kTypes>& table() {
  static std::array<DeviceBackend*, kTypes> t{};
  return t;
}

// Registers the backends built into this program, once, before the first lookup.
void register_builtin() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef RV_HAVE_CUDA
    table()[size_t(DeviceType::cuda)] = cuda::cuda_backend();
#endif
  });
}

const char* type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

}  // namespace

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

DeviceBackend* set_backend(DeviceType type, DeviceBackend* b) {
  if (type == DeviceType::cpu)
    throw std::invalid_argument("set_backend: the CPU is not a pluggable backend (its kernels live in engine/cpu)");
  if (b && b->type() != type)
    throw std::invalid_argument(std::string("set_backend: a ") + type_name(b->type()) + " backend given for " +
                                type_name(type));
  register_builtin();  // so that a later lookup does not overwrite `b` with the built-in one
  DeviceBackend*& slot = table()[size_t(type)];
  DeviceBackend* prev = slot;
  slot = b;
  return prev;
}

bool compiled_in(DeviceType type) {
  register_builtin();
  return type == DeviceType::cpu || table()[size_t(type)] != nullptr;
}

int device_count(DeviceType type) {
  if (type == DeviceType::cpu) return 1;
  register_builtin();
  DeviceBackend* b = table()[size_t(type)];
  return b ? b->device_count() : 0;
}

DeviceBackend& get(Device device) {
  if (device.is_cpu())
    throw std::logic_error("backend::get: the CPU has no device backend; CPU kernels are called directly");
  register_builtin();
  DeviceBackend* b = table()[size_t(device.type)];
  if (!b)
    throw std::runtime_error(device.str() + ": this build has no " + type_name(device.type) +
                             " backend (configure with -DROPEVIT_CUDA=ON on a machine with nvcc)");
  const int n = b->device_count();
  if (n == 0) throw std::runtime_error(device.str() + ": no CUDA device is available (" + b->unavailable_reason() + ")");
  if (device.index < 0 || device.index >= n)
    throw std::runtime_error(device.str() + ": no such device (this machine has " + std::to_string(n) + " " +
                             type_name(device.type) + " device" + (n == 1 ? "" : "s") + ")");
  return *b;
}

void throw_not_implemented(const char* op, Device device) {
  throw std::runtime_error(std::string(op) + ": not implemented on " + device.str() + " yet");
}

// ---- default op entries: a backend overrides the ones it has kernels for -------------------------

void DeviceBackend::copy_strided(const Tensor& dst, const Tensor&) { throw_not_implemented("copy", dst.device()); }
void DeviceBackend::fill(const Tensor& dst, double) { throw_not_implemented("fill_", dst.device()); }
Tensor DeviceBackend::binary(BinaryOp op, const Tensor& a, const Tensor&) {
  throw_not_implemented(binary_op_name(op), a.device());
}
Tensor DeviceBackend::sum_all(const Tensor& x) { throw_not_implemented("sum", x.device()); }

// ---- matmul ----
void DeviceBackend::set_matmul_impl(MatmulImpl) {
  throw std::runtime_error("matmul: this backend has no choice of matmul implementation");
}
DeviceBackend::MatmulImpl DeviceBackend::matmul_impl() const { return MatmulImpl::ours; }
Tensor DeviceBackend::gemm(const Tensor& a, const Tensor&, const Tensor&, bool) {
  throw_not_implemented("matmul", a.device());
}
Tensor DeviceBackend::column_sum(const Tensor& x) { throw_not_implemented("linear (bias gradient)", x.device()); }

}  // namespace rv::backend
