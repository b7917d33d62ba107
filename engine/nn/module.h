// module.h: nn::Module, the base class of every layer and model.
//
// A Module owns three kinds of named things, registered in its constructor:
//   parameters  tensors the optimizer trains (leaves with requires_grad)
//   buffers     other tensors that belong to the model (e.g. a RoPE frequency table or a
//               relative position index); persistent ones are saved in the state dict
//   children    sub-modules, held by std::shared_ptr so that a model owns its layers and a
//               layer can be kept and called through its own typed pointer
// From these, named_parameters() and state_dict() build dotted names such as
// `blocks.3.attn.qkv.weight` in exactly PyTorch's order, so that weights load from timm.
//
// A typical layer:
//
//   struct Scale : nn::Module {
//     Tensor weight;                                             // (C)
//     explicit Scale(int64_t C) { weight = register_parameter("weight", ones({C})); }
//     Tensor forward(const Tensor& x) { return mul(x, weight); } // x: (B, N, C)
//   };
//   struct Block : nn::Module {
//     std::shared_ptr<Scale> ls1;
//     Block() { ls1 = register_module("ls1", std::make_shared<Scale>(8)); }
//   };
//
// Ownership rule: the member handle (`weight`) and the registry share one tensor, so
// in-place updates (optimizer steps, load_state_dict) are seen by both. Never assign a new
// tensor to a registered member; copy values into it instead (`weight.copy_(w)` under
// NoGradGuard), or the member and the registry would drift apart.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/nn/state_dict.h"
#include "engine/tensor.h"

namespace rv::nn {

// What load_state_dict did not match (filled when strict = false).
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the model, not in the state dict
  std::vector<std::string> unexpected_keys;  // in the state dict, not in the model
};

struct LoadOptions {
  bool strict = true;          // missing or unexpected keys are an error
  bool convert_dtype = false;  // allow e.g. a float64 checkpoint into a float32 model
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Copying a module would silently share (or not share) its tensors; build a new one instead.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (from the constructor) ---------------------------------------------------
  // Names are non-empty, contain no '.', and are unique within this module across
  // parameters, buffers and children. Each returns its argument, so `w = register_...(...)`.

  // `value` must be a float leaf; it is marked requires_grad (unless requires_grad = false,
  // which freezes it: it is still a parameter and in the state dict, as in PyTorch).
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  // Any dtype. A non-persistent buffer is left out of state_dict() (and not expected by
  // load_state_dict): use it for tables recomputed from the config, e.g. RoPE positions.
  Tensor register_buffer(const std::string& name, Tensor value, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Puts `module` in the place of the child `name` (same name, same position in every traversal,
  // so the state dict keys do not change), then calls child_replaced so that a layer which keeps
  // a typed handle to that child can re-point it. Returns the old child. Used to swap a layer
  // for a variant after construction (nn::convert_sync_batchnorm, as PyTorch's add_module over an
  // existing name). Throws std::out_of_range when there is no such child.
  std::shared_ptr<Module> replace_child(const std::string& name, std::shared_ptr<Module> module);

  // ---- traversal (PyTorch's orders) -----------------------------------------------------------
  // Pre-order: this module's own parameters in registration order, then each child's, with the
  // child's name as prefix. A tensor reachable under two names (a shared child) is listed once.
  std::vector<NamedTensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<NamedTensor> named_buffers(bool recurse = true) const;  // persistent or not
  std::vector<Tensor> buffers(bool recurse = true) const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // This module (name "") and every descendant, pre-order, each once. The pointers are valid
  // while this module lives.
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  // A child by name (no dots) or a parameter / buffer by its full dotted name; throws naming it.
  std::shared_ptr<Module> child(const std::string& name) const;
  Tensor parameter(const std::string& dotted_name) const;
  Tensor buffer(const std::string& dotted_name) const;

  // ---- mode and gradients ---------------------------------------------------------------------
  // Sets training mode here and in every descendant (dropout, drop path, batch norm read it).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // drops every parameter's .grad (PyTorch's set_to_none=True)
  int64_t num_parameters(bool trainable_only = false) const;  // elements, shared tensors once
  // Converts every float parameter and float buffer of this module and its descendants to `dtype`
  // (PyTorch's module.to(dtype); integer buffers such as num_batches_tracked stay as they are).
  // The conversion happens inside each tensor, so the handles that layers hold stay valid; it
  // drops the gradients. Call it before making an optimizer, whose state keeps the old dtype.
  // Use: f64 for gradient checks of whole layers, bf16 / f16 for low-precision weights.
  void to(DType dtype);
  // Moves every parameter and buffer (integer ones too) of this module and its descendants to
  // `device` (PyTorch's module.to(device)), in place as to(dtype) does, dropping the gradients.
  // Call it before making an optimizer. Tensors a layer makes during forward (position grids,
  // masks) follow its input's device.
  void to(Device device);

  // ---- state dict -----------------------------------------------------------------------------
  // For each module in pre-order: its parameters, then its persistent buffers (PyTorch's
  // order). Values are detached aliases of the live tensors; use .clone() for a snapshot.
  StateDict state_dict() const;
  // Copies values into the registered tensors in place (under NoGradGuard), so handles held
  // by layers and optimizers stay valid. Everything is checked before anything is copied:
  // shape and dtype mismatches always throw, and with strict also missing and unexpected
  // keys, all listed in ONE error ("Error(s) in loading state_dict for <Type>: ...").
  // Unlike PyTorch, a failed load leaves the model unchanged. Non-strict returns the lists.
  LoadResult load_state_dict(const StateDict& state, const LoadOptions& options);
  LoadResult load_state_dict(const StateDict& state, bool strict = true) {
    return load_state_dict(state, LoadOptions{.strict = strict});
  }

  // ---- misc -----------------------------------------------------------------------------------
  // Calls fn on every descendant and then on this module (children first, as PyTorch's apply):
  // the hook for weight initialisation.
  void apply(const std::function<void(Module&)>& fn);
  // The class name without namespaces ("Block"), from RTTI; override to choose another.
  virtual std::string type_name() const;
  // A PyTorch-like tree: each module's type, its own parameters and buffers with shapes.
  std::string to_string() const;

 protected:
  // Called by replace_child just before the registry takes `now` under `name`. A layer that
  // keeps a typed member for a child (ConvModule::bn, ModuleList's items) overrides it to update
  // that member, so that its forward calls the new module (or throws, if `now` cannot take that
  // place: then nothing changes); the default keeps no such member.
  virtual void child_replaced(const std::string& name, const std::shared_ptr<Module>& now) {
    (void)name;
    (void)now;
  }

 private:
  struct Slot {
    std::string name;
    Tensor value;
    bool persistent = true;  // buffers only
  };
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect_state(const std::string& prefix, StateDict& out) const;
  // Own (or, with recurse, every module's) slots of one kind, each tensor once, dotted names.
  std::vector<NamedTensor> named_slots(std::vector<Slot> Module::*slots, bool recurse) const;
  void print(std::string& out, int indent) const;

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace rv::nn
