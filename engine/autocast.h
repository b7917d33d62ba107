// autocast.h: bf16 / f16 mixed precision as torch.autocast does it.
//
// Autocast is a per-thread mode. While an AutocastGuard is alive, the ops named below cast their
// float inputs before they run (the models are unchanged: the policy lives in the ops):
//   lower precision (the guard's dtype): matmul, linear, conv2d, conv_transpose2d,
//       scaled_dot_product_attention. Inputs are cast down, the op runs, the output is bf16/f16.
//   f32: softmax, log_softmax, layer_norm, group_norm, batch_norm, the losses, sum, exp, log,
//       pow, rsqrt. Inputs are cast up, so statistics and exponentials never run in 8 mantissa bits.
//   everything else follows its inputs; a binary op on (bf16, f32) promotes to f32 (as torch's
//       type promotion does).
// These are PyTorch's CUDA autocast lists restricted to the engine's ops (torch's CPU lists keep
// softmax and the norms in bf16; the engine applies the CUDA lists on every device, so the CPU
// run checks the numerics a GPU run will have). f64 tensors are never cast (as torch), so
// gradchecks under a guard still run in f64.
//
// The casts are ordinary differentiable .to(dtype) ops, so gradients flow back through them:
// f32 parameters (the master weights) get f32 gradients and the optimizer is unchanged. The
// backward pass itself never autocasts (autograd::run_backward disables it), as in torch.
//
// Weight cast cache: an f32 leaf that requires grad (a parameter) cast down is cast once per
// autocast region and the cast reused by every op that reads it (a weight shared by several
// blocks, or read again by a second forward inside the region), as torch caches it. The cache
// is cleared when the outermost guard (enabled or not) ends, so a parameter updated by the
// optimizer is cast afresh in the next step.
//
//   {
//     AutocastGuard amp(DType::bf16);          // forward + loss in mixed precision
//     Tensor loss = cross_entropy(model(x), y);  // logits bf16, loss f32
//   }
//   loss.backward();                           // outside the guard, as torch
#pragma once
#include <cstddef>

#include "engine/tensor.h"

namespace rv::autocast {

// Whether the current thread autocasts, and to which dtype (bf16 unless a guard said f16).
bool is_enabled();
DType lower_dtype();

// Turns autocast on (dtype bf16 or f16) or off (enabled = false) for its lifetime; guards nest
// and restore the previous state. The outermost guard's end clears the weight cast cache.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype = DType::bf16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

// Autocast off for its lifetime inside an autocast region (torch.autocast(enabled=False)): code
// that must run in the dtypes it was given. The ops use it too, so an op that calls other ops
// after applying the policy does not cast a second time.
class DisabledGuard {
 public:
  DisabledGuard() : guard_(lower_dtype(), false) {}

 private:
  AutocastGuard guard_;
};

// ---- the policy helpers the ops call (only meaningful while is_enabled()) ------------------
// `t` cast to lower_dtype() if it is an f32/f16/bf16 tensor (f64, integer and undefined tensors
// pass through). Parameters (f32 leaves requiring grad) go through the cache.
Tensor cast_lower(const Tensor& t);
// `t` cast to f32 if it is a bf16/f16 tensor; everything else passes through.
Tensor cast_f32(const Tensor& t);

// Entries in this thread's weight cast cache (for tests and the docs' claims).
size_t cache_size();

}  // namespace rv::autocast
