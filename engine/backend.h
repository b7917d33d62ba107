// backend.h: the interface a device backend (today: CUDA) implements, and the registry that
// engine code looks it up in by DeviceType.
//
// Why an interface: engine/ must build and run with no CUDA toolkit at all, and a CPU-only
// build must contain no CUDA symbol. So engine code never includes a cuda/ header; it asks
// `backend::get(device)` for the backend of a tensor's device and calls its virtual methods,
// once per op call (never per element: the CPU path does not go through here at all).
//
// What a backend provides:
//   - memory: allocate / deallocate (the backend may cache blocks), memset, statistics;
//   - copies: host -> device, device -> host, device -> device (raw bytes);
//   - synchronize (wait for all queued work on the device);
//   - ops: one virtual method per op family it implements. The default implementation of each
//     throws "<op>: not implemented on cuda:0 yet", so an op that a backend lacks fails loudly
//     instead of silently running on the CPU.
//
// Registration: the CUDA backend is registered the first time any backend is looked up, by the
// one function in engine/backend.cpp that knows whether CUDA was compiled in (the single
// #ifdef of the engine). Tests may stand in a replacement (set_backend returns the previous
// one, so it can be put back).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/device.h"

namespace rv {
class Tensor;
}

namespace rv::backend {

enum class BinaryOp : uint8_t { add, sub, mul, div };
const char* binary_op_name(BinaryOp op);  // "add", ...

// Device memory statistics (bytes unless named otherwise). "allocated" counts live blocks at the
// size handed out (their size class); "reserved" counts everything taken from the device,
// live or cached; the difference is what the cache holds.
struct MemoryStats {
  size_t allocated = 0;
  size_t reserved = 0;
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  size_t requested = 0;        // bytes the live blocks were asked for (<= allocated: the rest is slack)
  size_t allocations = 0;      // allocate() calls since start
  size_t cache_hits = 0;       // ... served from the cache
  size_t device_mallocs = 0;   // ... that went to the device allocator (cudaMalloc)
  bool caching = true;         // false when the cache is bypassed (ROPEVIT_CUDA_ALLOC=plain)
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual DeviceType type() const = 0;

  // ---- devices -------------------------------------------------------------------------------
  virtual int device_count() const = 0;
  // Why device_count() is 0 ("" when it is not), e.g. "cudaGetDeviceCount: no CUDA-capable device".
  virtual std::string unavailable_reason() const = 0;
  virtual std::string device_name(int index) const = 0;
  virtual void synchronize(int index) = 0;

  // ---- memory (raw bytes; `index` is the device index) ---------------------------------------
  virtual void* allocate(size_t nbytes, int index) = 0;
  virtual void deallocate(void* p, int index) = 0;
  virtual void memset(void* dst, int byte, size_t nbytes, int index) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes, int index) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes, int index) = 0;
  virtual void copy_on_device(void* dst, const void* src, size_t nbytes, int index) = 0;
  virtual MemoryStats memory_stats(int index) = 0;
  virtual void reset_peak_stats(int index) = 0;
  virtual void empty_cache(int index) = 0;  // hands cached blocks back to the device

  // ---- ops (all tensors on this backend's device; defaults throw "not implemented") ----------
  // dst[i] = src[i] with src broadcast to dst's shape; any strides; same dtype (copy_ / contiguous).
  virtual void copy_strided(const Tensor& dst, const Tensor& src);
  // Every element of dst (any strides) set to `value` (fill_, zeros, ones).
  virtual void fill(const Tensor& dst, double value);
  // z = a op b with broadcasting; a and b have one float dtype; z is fresh and contiguous.
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
  // The sum of all elements as a 0-d tensor of x's dtype.
  virtual Tensor sum_all(const Tensor& x);

  // ---- matmul (cuda/backend_matmul.cpp) ----
  // Which GEMM runs matmul/linear on this backend: the hand-written kernel (automatic choice of
  // its variants), forced to its simple 16x16 variant or its blocked 128x128 one, or cuBLAS.
  // Default: ours, or the ROPEVIT_MATMUL environment variable (ours|simple|blocked|cublas).
  enum class MatmulImpl : uint8_t { ours, simple, blocked, cublas };
  virtual void set_matmul_impl(MatmulImpl impl);
  virtual MatmulImpl matmul_impl() const;
  // out (batch, M, N), fresh and contiguous = a (Ba, M, K) · b (Bb, K, N) (+ bias (N,)) (then exact
  // GELU), f32 only. Ba and Bb are batch or 1 (1 = broadcast over the batch); any strides: a
  // last-two-dims view with unit stride in either dim (e.g. a transpose) is read in place with the
  // GEMM's transpose flag, anything else is made contiguous first. bias may be undefined.
  // Reads 4 * (Ba*M*K + Bb*K*N (+ N)) bytes, writes 4 * batch*M*N; 2 * batch*M*N*K FLOP.
  virtual Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu);
  // out (C,) = the sum over rows of x (R, C), f32, deterministic (fixed order, f64 accumulation).
  // Reads 4*R*C bytes. The bias gradient of linear.
  virtual Tensor column_sum(const Tensor& x);
};

// The backend of `device`'s type, checked to have that device. Throws std::runtime_error that
// names the device and says why when the backend is not built in or the device is absent.
DeviceBackend& get(Device device);

// True when a backend for `type` is compiled into this build (whether or not a device is present).
bool compiled_in(DeviceType type);
// Number of devices of `type` usable now (0 when not compiled in or none present).
int device_count(DeviceType type);

// Installs `b` (nullptr: none) as the backend of `type` and returns the previous one (nullptr if
// none), so a test can stand a fake in and put the real one back. The registry does not own
// backends: they must outlive their registration.
DeviceBackend* set_backend(DeviceType type, DeviceBackend* b);

// The error every op throws on a device it has no kernel for: "<op>: not implemented on cuda:0 yet".
[[noreturn]] void throw_not_implemented(const char* op, Device device);

}  // namespace rv::backend
