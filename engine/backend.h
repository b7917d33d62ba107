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

  // ---- rotary embedding (cuda/backend_rope.cpp) ----
  // Shapes as in engine/ops/rope.h: x (B, NH, N, HD) with HD even, any strides (the channel dim is
  // read contiguous; a view with another channel stride is copied first); angles (NH or 1, N - skip,
  // HD/2) f32 (a leading 1 is shared by every head); outputs contiguous. x and g: f32 or bf16
  // storage, f32 math, rounded once; other dtypes throw "not implemented on cuda:N yet".
  // out = x rotated by the angles (`inverse`: by -angles, the backward w.r.t. x; a gradient g goes
  // in as x), the first `skip_tokens` tokens copied. Same dtype as x.
  virtual Tensor rope_rotate(const Tensor& x, const Tensor& angles, int64_t skip_tokens, bool inverse);
  // q and k (same shape and dtype, e.g. two views of one qkv tensor) rotated by the same angles in
  // one launch: q_out, k_out = rope_rotate(q, ...), rope_rotate(k, ...).
  virtual void rope_rotate_qk(const Tensor& q, const Tensor& k, const Tensor& angles, int64_t skip_tokens,
                              bool inverse, Tensor& q_out, Tensor& k_out);
  // The gradient w.r.t. the angles of out = rope_rotate(x, angles, skip): (NH or 1, N - skip, HD/2)
  // f32, summed over the batch (and the heads when shared) in a fixed order. g: d loss / d out,
  // same shape and dtype as x. Deterministic.
  virtual Tensor rope_angles_grad(const Tensor& g, const Tensor& x, const Tensor& angles, int64_t skip_tokens);
  // The same for q and k rotated together: the sum of both tensors' contributions, one reduction.
  virtual Tensor rope_angles_grad_qk(const Tensor& gq, const Tensor& q, const Tensor& gk, const Tensor& k,
                                     const Tensor& angles, int64_t skip_tokens);
  // angles (NH, N, HD/2) f32 = rope_angles(freqs (A, NH, HD/2) f32, pos (N, A) f32), equal to the CPU
  // bit for bit.
  virtual Tensor rope_angles(const Tensor& freqs, const Tensor& pos);
  // Its backward from g (NH, N, HD/2): *dfreqs (A, NH, HD/2) and *dpos (N, A), each computed only
  // when the pointer is not null. Bit-identical to the CPU.
  virtual void rope_angles_backward(const Tensor& g, const Tensor& freqs, const Tensor& pos, Tensor* dfreqs,
                                    Tensor* dpos);
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
