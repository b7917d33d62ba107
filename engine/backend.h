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
#include <vector>

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

  // ---- optim, reductions, unary math (cuda/backend_optim.cpp, cuda/backend_reduce_unary.cpp) ----
  // Unary / tensor-scalar elementwise ops; `a`, `b` are the scalar arguments where the op has any.
  enum class UnaryOp : uint8_t {
    neg,          // -x
    exp, log, sqrt, rsqrt, abs, tanh,
    add_scalar,   // x + a
    mul_scalar,   // x * a
    rsub_scalar,  // a - x
    rdiv_scalar,  // a / x
    pow_scalar,   // x ^ a
    clamp,        // min(max(x, a), b); a = -inf / b = +inf for a missing bound; NaN stays NaN
  };
  static const char* unary_op_name(UnaryOp op);  // the public op's name: "exp", "add", "clamp", ...
  // z = op(x) elementwise; x any strides, f32 / f64 / bf16 (bf16 computed in f32); z is fresh,
  // contiguous, x's shape and dtype. Reads x.numel() and writes z.numel() elements.
  virtual Tensor unary(UnaryOp op, const Tensor& x, double a = 0.0, double b = 0.0);
  // The input gradient of the math ops exp ... tanh, pow_scalar, clamp as one fused map over
  // (g, s): s is the saved output for exp, sqrt, rsqrt, tanh and the saved input otherwise (as
  // engine/ops/math.cpp records them). g and s have one shape and dtype; result contiguous.
  virtual Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& s, double a = 0.0, double b = 0.0);
  // Sum over the dims where reduced[d] (one flag per dim of x, at least one set), keepdim as
  // rv::sum. x any strides, f32 / f64 / bf16 (accumulated in f64; bf16 rounded via f32). Result
  // fresh and contiguous. Deterministic: each output is summed in an order fixed by the shape.
  virtual Tensor sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim);

  // One parameter of a fused AdamW step (engine/optim/adamw.h has the formulas). All tensors
  // contiguous, same shape, same dtype (f32 or f64, one dtype across the whole call);
  // max_exp_avg_sq is null unless amsgrad. `step` is the parameter's step count after this update.
  // The pointers are valid during the call only (the gradients may be the caller's temporaries).
  struct AdamWParam {
    const Tensor* param = nullptr;           // updated in place
    const Tensor* grad = nullptr;            // read
    const Tensor* exp_avg = nullptr;         // updated in place
    const Tensor* exp_avg_sq = nullptr;      // updated in place
    const Tensor* max_exp_avg_sq = nullptr;  // updated in place (amsgrad), else null
    double lr = 0.0, beta1 = 0.0, beta2 = 0.0, eps = 0.0, weight_decay = 0.0;
    int64_t step = 1;
  };
  // One launch updates every entry (multi-tensor apply). Per element it reads p, g, m, v (and
  // vmax) and writes p, m, v (and vmax): 7 (9 with amsgrad) * itemsize bytes of traffic.
  virtual void adamw_step(const std::vector<AdamWParam>& params);
  // The L2 norm of all elements of all `tensors` taken together (contiguous, one dtype f32 or
  // f64), as a 0-d f64 tensor on their device; no host sync. Reads every element once.
  virtual Tensor l2_norm_multi(const std::vector<Tensor>& tensors);
  // Multiplies every element of every tensor (contiguous, one dtype) in place by
  // coef = max_norm / (norm + 1e-6) when coef < 1 or is NaN (clip_grad_norm_'s rule); `norm` is
  // the 0-d f64 device tensor of l2_norm_multi, read on the device (no host sync). Reads and
  // writes every element once (only when clipping happens; otherwise reads nothing).
  virtual void scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm);
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
