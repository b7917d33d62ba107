// autocast.cpp: the per-thread autocast state, its guards, and the weight cast cache
// (the policy itself is applied at the top of each op; see autocast.h for the lists).
#include "engine/autocast.h"

#include <stdexcept>
#include <string>
#include <unordered_map>

#include "engine/autograd.h"

namespace rv::autocast {

namespace {

// One cached down-cast of a parameter. `source` tells a live parameter from a new tensor that
// reuses a freed one's address; `version` catches an in-place update inside the region (the
// cast would be stale); `with_grad` a cast made under no_grad (it has no graph to the parameter,
// so a later forward with grad on must not reuse it).
struct CacheEntry {
  std::weak_ptr<TensorImpl> source;
  uint64_t version = 0;
  bool with_grad = false;
  Tensor cast;
};

struct State {
  bool enabled = false;
  DType dtype = DType::bf16;
  int depth = 0;  // live guards, enabled or not
  std::unordered_map<const TensorImpl*, CacheEntry> cache;
};

State& state() {
  thread_local State s;
  return s;
}

// torch casts fp32/fp16/bf16 tensors and leaves f64 (and non-float tensors) alone.
bool eligible(const Tensor& t) {
  return t.defined() && (t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16);
}

}  // namespace

bool is_enabled() { return state().enabled; }
DType lower_dtype() { return state().dtype; }

AutocastGuard::AutocastGuard(DType dtype, bool enabled) : prev_enabled_(state().enabled), prev_dtype_(state().dtype) {
  if (enabled && dtype != DType::bf16 && dtype != DType::f16)
    throw std::invalid_argument(std::string("AutocastGuard: expected dtype bfloat16 or float16, got ") +
                                dtype_name(dtype));
  State& s = state();
  s.enabled = enabled;
  if (enabled) s.dtype = dtype;
  ++s.depth;
}

AutocastGuard::~AutocastGuard() {
  State& s = state();
  s.enabled = prev_enabled_;
  s.dtype = prev_dtype_;
  if (--s.depth == 0) s.cache.clear();  // the region is over: the next one casts the updated weights
}

Tensor cast_lower(const Tensor& t) {
  const DType to = lower_dtype();
  if (!eligible(t) || t.dtype() == to) return t;
  // A parameter: cast once per region (the cast and its graph node are shared by every reader).
  const bool cacheable = t.dtype() == DType::f32 && t.is_leaf() && t.requires_grad();
  if (!cacheable) return t.to(to);
  State& s = state();
  const bool grad_on = autograd::grad_enabled();
  const uint64_t version = t.storage()->version();
  auto it = s.cache.find(t.impl());
  if (it != s.cache.end()) {
    const CacheEntry& e = it->second;
    if (e.source.lock() == t.impl_ptr() && e.version == version && e.cast.dtype() == to && (e.with_grad || !grad_on))
      return e.cast;
  }
  Tensor cast = t.to(to);
  s.cache[t.impl()] = CacheEntry{t.impl_ptr(), version, grad_on, cast};
  return cast;
}

Tensor cast_f32(const Tensor& t) {
  if (!eligible(t) || t.dtype() == DType::f32) return t;
  return t.to(DType::f32);
}

size_t cache_size() { return state().cache.size(); }

}  // namespace rv::autocast
