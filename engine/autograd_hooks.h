// autograd_hooks.h: post-accumulate-grad hooks, callbacks that the backward engine
// (autograd.h, run_backward) runs on a leaf once its gradient is final for this backward.
//
// torch calls this Tensor.register_post_accumulate_grad_hook. Data-parallel training uses it to
// send a bucket of gradients while the rest of the backward still runs
// (train/distributed/grad_sync.h).
//
//   autograd::HookHandle h = autograd::register_post_accumulate_grad_hook(w, [](const Tensor& leaf) {
//     use(leaf.grad());   // final for this backward
//   });
//   loss.backward();      // the hook runs once, inside backward(), after w's last contribution
//
// When it fires: a leaf that several nodes use (a weight shared by two layers, mul(w, w))
// receives one gradient per use; at the start of backward() the engine counts the uses among the
// nodes it will run (the edges into the leaf, as it counts the edges into each node), and runs
// the hooks after the last one has been added to .grad: once per leaf per backward. A leaf the
// backward does not reach gets no call. Hooks run on the thread running backward(), with grad
// mode off, in registration order; an exception from one leaves backward() with it (the rest of
// the graph is not run). Calling backward() on a leaf itself runs its hooks after the seed is added.
//
// Cost: the hooks live in a table beside the tensors (TensorImpl stays as it is), and a backward
// while no hook is registered anywhere pays one atomic load. The handle removes its hook when
// destroyed (or by remove()), so an object whose hooks capture `this` keeps the handles as
// members. Register and remove outside a running backward: a backward uses the hooks present
// when it started.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/tensor.h"

namespace rv::autograd {

using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<TensorImpl> leaf, uint64_t id) : leaf_(std::move(leaf)), id_(id) {}
  HookHandle(HookHandle&& o) noexcept : leaf_(std::move(o.leaf_)), id_(o.id_) { o.id_ = 0; }
  HookHandle& operator=(HookHandle&& o) noexcept;
  HookHandle(const HookHandle&) = delete;
  HookHandle& operator=(const HookHandle&) = delete;
  ~HookHandle() { remove(); }
  void remove();  // idempotent; harmless once the tensor is gone
 private:
  std::weak_ptr<TensorImpl> leaf_;
  uint64_t id_ = 0;  // 0: owns no hook
};

// Throws std::invalid_argument unless `leaf` is a leaf that requires grad.
[[nodiscard]] HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);

}  // namespace rv::autograd
