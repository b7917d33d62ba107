// autograd.h: the dynamic tape.
//
// Every differentiable op that runs while grad mode is on, and that has at least one input
// requiring grad, records a Node: its name, one Edge per input, and a backward closure that
// maps the gradient of the op's output to the gradients of its inputs. backward() walks the
// Nodes reachable from the loss in reverse topological order, sums the gradients that meet at
// a tensor, and accumulates them into the .grad of leaves. Each Node's closure and edges are
// released as soon as it has run, so the graph is freed by the backward pass.
//
// How an op records itself (see engine/ops/elementwise.cpp for many examples):
//
//   Tensor out = ...compute forward...;
//   if (auto rec = autograd::Recorder("mul", {a, b})) {
//     Tensor sa = rec.save(a), sb = rec.save(b);            // detached, version-checked
//     rec.finish(out, [=](const Tensor& g, const autograd::Needs& need) -> autograd::Grads {
//       return {need[0] ? mul(g, sb) : Tensor(), need[1] ? mul(g, sa) : Tensor()};
//     });
//   }
//
// The closure runs with grad mode off. Each returned gradient must have its input's shape
// (an op that broadcasts reduces its gradient with sum_to_shape); the engine checks this.
// A gradient may be left undefined when needs[i] is false.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rv::autograd {

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
using BackwardFn = std::function<Grads(const Tensor& grad_output, const Needs& needs)>;

// Where an input's gradient goes: into another node (non-leaf) or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;            // set for non-leaf inputs
  std::shared_ptr<TensorImpl> leaf;      // set for leaves that require grad
  bool active() const { return node || leaf; }
};

struct SavedVersion {
  std::shared_ptr<Storage> storage;
  uint64_t version;
};

struct Node {
  std::string name;
  std::vector<Edge> edges;               // one per op input, in call order
  std::vector<SavedVersion> saved;       // storages whose versions must not change
  BackwardFn backward;
  uint64_t sequence = 0;                 // creation order; later nodes run first on ties
  Shape output_shape;                    // for checking the incoming gradient
  DType output_dtype = DType::f32;
};

// Grad mode is per thread, on by default.
bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording for its lifetime (like torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool prev_;
};

// Builds one Node for one op call; inactive (and free) when nothing needs a gradient.
class Recorder {
 public:
  Recorder(const char* name, std::initializer_list<Tensor> inputs);
  Recorder(const char* name, const std::vector<Tensor>& inputs);
  explicit operator bool() const { return node_ != nullptr; }
  bool needs(size_t i) const { return node_ && node_->edges[i].active(); }
  // Keeps a value for backward: a detached alias whose storage version is checked before the
  // closure runs, so an in-place write after the forward pass is an error, not a wrong gradient.
  Tensor save(const Tensor& t);
  // Attaches the node to `out` (which becomes a non-leaf requiring grad).
  void finish(Tensor& out, BackwardFn fn);
 private:
  void init(const char* name, const Tensor* inputs, size_t n);
  std::shared_ptr<Node> node_;
};

// Runs backward from `root` with seed gradient `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad);

// Throws if an in-place op named `op` may not write into `t` (a tensor requiring grad while
// grad mode is on), and otherwise bumps the storage version.
void check_inplace(const Tensor& t, const char* op);

}  // namespace rv::autograd

// Post-accumulate-grad hooks, callbacks that run_backward runs on a leaf once its gradient is
// final for the backward (torch's register_post_accumulate_grad_hook): engine/autograd_hooks.h.
