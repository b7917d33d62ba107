// autograd.cpp: recording nodes and running the backward pass.
#include "engine/autograd.h"
#include "engine/autograd_hooks.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/autocast.h"
#include "engine/ops/elementwise.h"

namespace rv::autograd {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_sequence{0};
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

Recorder::Recorder(const char* name, std::initializer_list<Tensor> inputs) {
  init(name, inputs.begin(), inputs.size());
}
Recorder::Recorder(const char* name, const std::vector<Tensor>& inputs) {
  init(name, inputs.data(), inputs.size());
}

void Recorder::init(const char* name, const Tensor* inputs, size_t n) {
  if (!grad_enabled()) return;
  bool any = false;
  for (size_t i = 0; i < n; ++i) any = any || (inputs[i].defined() && inputs[i].requires_grad());
  if (!any) return;
  node_ = std::make_shared<Node>();
  node_->name = name;
  node_->sequence = g_sequence.fetch_add(1);
  node_->edges.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    if (t.impl()->grad_fn)
      node_->edges[i].node = t.impl()->grad_fn;
    else
      node_->edges[i].leaf = t.impl_ptr();
  }
}

Tensor Recorder::save(const Tensor& t) {
  if (!t.defined()) return t;
  node_->saved.push_back({t.storage(), t.storage()->version()});
  return t.detach();
}

void Recorder::finish(Tensor& out, BackwardFn fn) {
  node_->backward = std::move(fn);
  node_->output_shape = out.shape();
  node_->output_dtype = out.dtype();
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = node_;
}

void check_inplace(const Tensor& t, const char* op) {
  if (grad_enabled() && t.requires_grad())
    throw std::runtime_error(std::string(op) + ": in-place operation on a tensor that requires grad " +
                             (t.is_leaf() ? "(a leaf)" : "(part of a recorded graph)") +
                             " is not allowed while grad mode is on; use an out-of-place op, or "
                             "NoGradGuard for parameter updates");
  t.storage()->bump_version();
}

// ---- post-accumulate-grad hooks (see autograd_hooks.h) ---------------------------------------------
namespace {

// The hooks of every leaf that has some, keyed by its impl. The weak pointer tells a live entry
// from one whose tensor died (its address may since belong to another tensor).
struct HookEntry {
  std::weak_ptr<TensorImpl> leaf;
  std::vector<std::pair<uint64_t, PostAccumulateGradHook>> hooks;  // (id, hook), registration order
};
struct HookTable {
  std::mutex mu;
  std::unordered_map<TensorImpl*, HookEntry> by_leaf;
  uint64_t next_id = 1;
  std::atomic<size_t> leaves{0};  // by_leaf.size(), readable without the lock: backward's fast path
};
HookTable& hook_table() {
  static HookTable* t = new HookTable;  // never destroyed: handles may outlive static destructors
  return *t;
}

bool same_owner(const std::weak_ptr<TensorImpl>& a, const std::weak_ptr<TensorImpl>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}

}  // namespace

HookHandle& HookHandle::operator=(HookHandle&& o) noexcept {
  if (this != &o) {
    remove();
    leaf_ = std::move(o.leaf_);
    id_ = o.id_;
    o.id_ = 0;
  }
  return *this;
}

void HookHandle::remove() {
  if (id_ == 0) return;
  HookTable& t = hook_table();
  std::lock_guard<std::mutex> lock(t.mu);
  // The key is the address the tensor had; an entry there for another (newer) tensor is not ours.
  for (auto it = t.by_leaf.begin(); it != t.by_leaf.end(); ++it) {
    if (!same_owner(it->second.leaf, leaf_)) continue;
    std::erase_if(it->second.hooks, [&](const auto& h) { return h.first == id_; });
    if (it->second.hooks.empty()) {
      t.by_leaf.erase(it);
      t.leaves.store(t.by_leaf.size());
    }
    break;
  }
  leaf_.reset();
  id_ = 0;
}

HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  if (!leaf.defined() || !leaf.is_leaf() || !leaf.requires_grad())
    throw std::invalid_argument(
        "register_post_accumulate_grad_hook: expected a leaf tensor that requires grad (a parameter), got " +
        std::string(!leaf.defined() ? "an undefined tensor"
                    : !leaf.is_leaf() ? "the output of an op (a non-leaf)"
                                      : "a tensor that does not require grad"));
  if (!hook) throw std::invalid_argument("register_post_accumulate_grad_hook: the hook is empty");
  HookTable& t = hook_table();
  std::lock_guard<std::mutex> lock(t.mu);
  HookEntry& e = t.by_leaf[leaf.impl()];
  if (!same_owner(e.leaf, leaf.impl_ptr())) e = HookEntry{leaf.impl_ptr(), {}};  // new, or a dead tensor's
  const uint64_t id = t.next_id++;
  e.hooks.emplace_back(id, std::move(hook));
  t.leaves.store(t.by_leaf.size());
  return HookHandle(leaf.impl_ptr(), id);
}

namespace {

// A backward's view of the hooks: for each hooked leaf it will reach, its hooks (copied when the
// backward starts) and how many gradients it has still to receive.
struct LeafHookUse {
  std::vector<PostAccumulateGradHook> hooks;
  int uses = 0;
};
using HookUses = std::unordered_map<TensorImpl*, LeafHookUse>;

// Adds one expected gradient for `leaf` when it has hooks (only called when some leaf has).
void count_hooked_use(HookUses& uses, TensorImpl* leaf) {
  auto it = uses.find(leaf);
  if (it != uses.end()) {
    ++it->second.uses;
    return;
  }
  HookTable& t = hook_table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto e = t.by_leaf.find(leaf);
  if (e == t.by_leaf.end() || e->second.leaf.expired()) return;
  LeafHookUse& u = uses[leaf];
  for (const auto& h : e->second.hooks) u.hooks.push_back(h.second);
  u.uses = 1;
}

void run_hooks(const std::vector<PostAccumulateGradHook>& hooks, const std::shared_ptr<TensorImpl>& leaf) {
  const Tensor t(leaf);
  for (const auto& h : hooks) h(t);
}

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined())
    slot = g;
  else
    slot = add(slot, g);
}

// Nodes reachable from `root`, each with the number of edges that point at it; with `hooks`
// (some leaf has post-accumulate hooks), also the gradients each hooked leaf will receive.
std::unordered_map<Node*, int> count_dependencies(Node* root, HookUses* hooks) {
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root};
  std::unordered_set<Node*> seen{root};
  deps[root] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->edges) {
      if (hooks && e.leaf) count_hooked_use(*hooks, e.leaf.get());
      if (!e.node) continue;
      deps[e.node.get()] += 1;
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
  return deps;
}

// The leaf's .grad must be a dense buffer that nothing else can see (an optimizer or the next
// backward writes into it). A gradient that already is one is adopted; anything else (a view,
// a broadcast, a tensor a node still holds) is copied.
Tensor owned_gradient(const Tensor& g) {
  const bool sole_owner = g.storage().use_count() == 1 && g.offset() == 0 && g.is_contiguous() &&
                          size_t(g.numel()) * g.itemsize() == g.storage()->nbytes();
  return sole_owner ? g.detach() : g.clone();
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad) {
  if (!root.requires_grad())
    throw std::runtime_error("backward: the tensor does not require grad and has no grad_fn");
  if (grad.shape() != root.shape())
    throw std::runtime_error("backward: gradient shape " + shape_str(grad.shape()) +
                             " does not match the tensor's shape " + shape_str(root.shape()));
  NoGradGuard no_grad;
  // The backward closures compute in the dtypes the forward pass saved; autocasting them again
  // (a backward() called inside an autocast region) would round f32 gradients to bf16. Torch's
  // backward does not autocast either.
  autocast::DisabledGuard no_autocast;
  if (root.is_leaf()) {  // a leaf's gradient is the seed itself
    Tensor slot = root.grad();
    accumulate(slot, grad.to(root.dtype()));
    root.impl()->grad = slot.impl_ptr();
    if (hook_table().leaves.load() > 0) {
      HookUses uses;
      count_hooked_use(uses, root.impl());
      if (!uses.empty()) run_hooks(uses.begin()->second.hooks, root.impl_ptr());
    }
    return;
  }
  std::shared_ptr<Node> root_node = root.impl()->grad_fn;
  HookUses hook_uses;  // filled only when some leaf has hooks
  const bool any_hooks = hook_table().leaves.load() > 0;
  auto deps = count_dependencies(root_node.get(), any_hooks ? &hook_uses : nullptr);
  std::unordered_map<Node*, Tensor> pending;  // summed output gradient of each node
  pending[root_node.get()] = grad;

  // Ready nodes: all their consumers have run. Ties go to the most recently created node.
  auto later_first = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence < b->sequence;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(later_first)>
      ready(later_first);
  ready.push(root_node);

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    Tensor g_out = std::move(pending[node.get()]);
    pending.erase(node.get());
    if (!node->backward)
      throw std::runtime_error("backward: the graph through '" + node->name +
                               "' was already freed by an earlier backward()");
    for (auto& sv : node->saved)
      if (sv.storage->version() != sv.version)
        throw std::runtime_error("backward of '" + node->name +
                                 "': a tensor it saved was modified in place after the forward pass "
                                 "(version " + std::to_string(sv.storage->version()) + ", saved at " +
                                 std::to_string(sv.version) + ")");
    if (g_out.dtype() != node->output_dtype) g_out = g_out.to(node->output_dtype);
    Needs needs(node->edges.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->edges[i].active();
    Grads grads = node->backward(g_out, needs);
    if (grads.size() != node->edges.size())
      throw std::logic_error("backward of '" + node->name + "' returned " + std::to_string(grads.size()) +
                             " gradients for " + std::to_string(node->edges.size()) + " inputs");
    std::vector<Edge> edges = std::move(node->edges);
    node->backward = nullptr;  // free the closure and what it saved
    node->saved.clear();
    for (size_t i = 0; i < edges.size(); ++i) {
      Edge& e = edges[i];
      if (!e.active()) continue;
      Tensor& g = grads[i];
      if (!g.defined()) throw std::logic_error("backward of '" + node->name + "' left a needed gradient undefined");
      if (e.leaf) {
        if (g.shape() != e.leaf->shape)
          throw std::logic_error("backward of '" + node->name + "': gradient shape " + shape_str(g.shape()) +
                                 " != input shape " + shape_str(e.leaf->shape));
        Tensor slot = e.leaf->grad ? Tensor(e.leaf->grad) : Tensor();
        if (!slot.defined())
          slot = owned_gradient(g.to(e.leaf->dtype));
        else
          slot = add(slot, g.to(e.leaf->dtype));
        e.leaf->grad = slot.impl_ptr();
        if (!hook_uses.empty()) {  // the leaf's last gradient of this backward: its hooks run now
          auto it = hook_uses.find(e.leaf.get());
          if (it != hook_uses.end() && --it->second.uses == 0) run_hooks(it->second.hooks, e.leaf);
        }
      } else {
        Node* next = e.node.get();
        if (g.shape() != next->output_shape)
          throw std::logic_error("backward of '" + node->name + "': gradient shape " + shape_str(g.shape()) +
                                 " != input shape " + shape_str(next->output_shape));
        accumulate(pending[next], g);
        if (--deps[next] == 0) ready.push(e.node);
      }
    }
  }
}

}  // namespace rv::autograd
