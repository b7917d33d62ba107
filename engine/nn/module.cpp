// module.cpp: registration, traversal, train/eval, and state_dict load/save for nn::Module.
#include "engine/nn/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <stdexcept>
#include <typeinfo>
#include <unordered_set>

#include "engine/autograd.h"

namespace rv::nn {

// ---- registration -------------------------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* what) const {
  std::string where = std::string("Module::register_") + what + " in " + type_name();
  if (name.empty()) throw std::invalid_argument(where + ": the name is empty");
  if (name.find('.') != std::string::npos)
    throw std::invalid_argument(where + ": name \"" + name + "\" contains '.'; dots separate module levels");
  auto clash = [&](const char* kind) {
    throw std::invalid_argument(where + ": \"" + name + "\" is already registered as a " + kind);
  };
  for (const auto& s : params_)
    if (s.name == name) clash("parameter");
  for (const auto& s : buffers_)
    if (s.name == name) clash("buffer");
  for (const auto& c : children_)
    if (c.first == name) clash("child module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name, "parameter");
  std::string where = "Module::register_parameter(\"" + name + "\")";
  if (!value.defined()) throw std::invalid_argument(where + ": the tensor is undefined");
  if (!is_floating(value.dtype()))
    throw std::invalid_argument(where + ": parameters must be float tensors, got " + dtype_name(value.dtype()));
  if (!value.is_leaf())
    throw std::invalid_argument(where + ": the tensor is the output of a recorded op; pass a leaf "
                                "(e.g. build it under NoGradGuard or call detach())");
  value.requires_grad_(requires_grad);
  params_.push_back({name, value, true});
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  check_new_name(name, "buffer");
  if (!value.defined())
    throw std::invalid_argument("Module::register_buffer(\"" + name + "\"): the tensor is undefined");
  if (value.requires_grad())
    throw std::invalid_argument("Module::register_buffer(\"" + name +
                                "\"): the tensor requires grad; trained tensors are parameters");
  buffers_.push_back({name, value, persistent});
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  if (!module) throw std::invalid_argument("Module::register_module(\"" + name + "\"): the module is null");
  // A module inside its own subtree would make every traversal loop forever.
  for (const auto& [n, m] : module->named_modules())
    if (m == this)
      throw std::invalid_argument("Module::register_module(\"" + name + "\"): " + type_name() +
                                  " would become its own descendant");
  children_.emplace_back(name, std::move(module));
}

std::shared_ptr<Module> Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  const std::string where = "Module::replace_child(\"" + name + "\") in " + type_name();
  if (!module) throw std::invalid_argument(where + ": the module is null");
  for (auto& [n, old] : children_) {
    if (n != name) continue;
    for (const auto& [unused, m] : module->named_modules())
      if (m == this) throw std::invalid_argument(where + ": " + type_name() + " would become its own descendant");
    child_replaced(name, module);  // first: a layer that refuses the module throws before any change
    std::shared_ptr<Module> was = std::move(old);
    old = std::move(module);
    return was;
  }
  throw std::out_of_range(where + ": no child of that name");
}

// ---- traversal ----------------------------------------------------------------------------------

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  std::unordered_set<const Module*> seen;
  std::function<void(const std::string&, const Module*)> walk = [&](const std::string& prefix, const Module* m) {
    if (!seen.insert(m).second) return;
    out.emplace_back(prefix, const_cast<Module*>(m));
    for (const auto& [name, child] : m->children_) walk(prefix.empty() ? name : prefix + "." + name, child.get());
  };
  walk("", this);
  return out;
}

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

std::vector<NamedTensor> Module::named_slots(std::vector<Slot> Module::*slots, bool recurse) const {
  std::vector<NamedTensor> out;
  std::unordered_set<const TensorImpl*> seen;  // a tensor shared by two modules is listed once
  auto add_own = [&](const std::string& prefix, const Module* m) {
    for (const auto& s : m->*slots)
      if (seen.insert(s.value.impl()).second) out.emplace_back(join(prefix, s.name), s.value);
  };
  if (!recurse) {
    add_own("", this);
    return out;
  }
  for (const auto& [prefix, m] : named_modules()) add_own(prefix, m);
  return out;
}

std::vector<NamedTensor> Module::named_parameters(bool recurse) const { return named_slots(&Module::params_, recurse); }

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<NamedTensor> Module::named_buffers(bool recurse) const { return named_slots(&Module::buffers_, recurse); }

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, m] : children_)
    if (n == name) return m;
  throw std::out_of_range(type_name() + ".child: no child module named \"" + name + "\"");
}

Tensor Module::parameter(const std::string& dotted_name) const {
  for (const auto& [n, t] : named_parameters())
    if (n == dotted_name) return t;
  throw std::out_of_range(type_name() + ".parameter: no parameter named \"" + dotted_name + "\"");
}

Tensor Module::buffer(const std::string& dotted_name) const {
  for (const auto& [n, t] : named_buffers())
    if (n == dotted_name) return t;
  throw std::out_of_range(type_name() + ".buffer: no buffer named \"" + dotted_name + "\"");
}

// ---- mode and gradients -------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

void Module::to(Device device) {
  auto move = [device](const Tensor& t) {
    if (t.device() == device) return;
    Tensor c;
    {
      autograd::NoGradGuard no_grad;
      c = t.detach().to(device);
    }
    TensorImpl* impl = t.impl();
    impl->storage = c.storage();
    impl->offset = c.offset();
    impl->shape = c.shape();
    impl->strides = c.strides();
    impl->grad.reset();
  };
  for (auto& [name, m] : named_modules()) {
    for (auto& s : m->params_) move(s.value);
    for (auto& s : m->buffers_) move(s.value);
  }
}

void Module::to(DType dtype) {
  if (!is_floating(dtype))
    throw std::invalid_argument("Module::to(" + std::string(dtype_name(dtype)) + ") in " + type_name() +
                                ": expected a float dtype");
  // Rewrites the tensor's own TensorImpl (storage, layout, dtype) rather than making a new
  // tensor, so every handle to it (a layer's member, the registry, a tied weight) sees the
  // conversion. Autograd's saved tensors are separate impls and keep the old storage.
  auto convert = [dtype](const Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    Tensor c;
    {
      autograd::NoGradGuard no_grad;
      c = t.detach().to(dtype).contiguous();
    }
    TensorImpl* impl = t.impl();
    impl->storage = c.storage();
    impl->offset = c.offset();
    impl->shape = c.shape();
    impl->strides = c.strides();
    impl->dtype = dtype;
    impl->grad.reset();
  };
  for (auto& [name, m] : named_modules()) {
    for (auto& s : m->params_) convert(s.value);
    for (auto& s : m->buffers_) convert(s.value);
  }
}

// ---- state dict ---------------------------------------------------------------------------------

void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const auto& s : params_) out.insert(prefix + s.name, s.value.detach());
  for (const auto& s : buffers_)
    if (s.persistent) out.insert(prefix + s.name, s.value.detach());
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

StateDict Module::state_dict() const {
  StateDict out;
  collect_state("", out);
  return out;
}

LoadResult Module::load_state_dict(const StateDict& state, const LoadOptions& options) {
  // The model's side: the same walk as state_dict(), but keeping the live tensors.
  StateDict own;
  collect_state("", own);

  LoadResult result;
  std::vector<std::string> mismatches;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source), done only if all is well
  for (const auto& [name, dst] : own) {
    const Tensor* src = state.find(name);
    if (!src) {
      result.missing_keys.push_back(name);
      continue;
    }
    if (!src->defined()) {
      mismatches.push_back("value for " + name + " is an undefined tensor.");
      continue;
    }
    if (src->shape() != dst.shape()) {
      mismatches.push_back("size mismatch for " + name + ": copying a param with shape " + shape_str(src->shape()) +
                           " from checkpoint, the shape in current model is " + shape_str(dst.shape()) + ".");
      continue;
    }
    if (src->dtype() != dst.dtype() && !options.convert_dtype) {
      mismatches.push_back("dtype mismatch for " + name + ": the checkpoint has " + dtype_name(src->dtype()) +
                           ", the model has " + dtype_name(dst.dtype()) +
                           " (set LoadOptions::convert_dtype to convert).");
      continue;
    }
    copies.emplace_back(dst, *src);
  }
  for (const auto& [name, value] : state)
    if (!own.contains(name)) result.unexpected_keys.push_back(name);

  auto quoted_list = [](const std::vector<std::string>& keys) {
    std::string s;
    for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", \"" : "\"") + keys[i] + "\"";
    return s;
  };
  std::vector<std::string> errors;
  if (options.strict && !result.missing_keys.empty())
    errors.push_back("Missing key(s) in state_dict: " + quoted_list(result.missing_keys) + ".");
  if (options.strict && !result.unexpected_keys.empty())
    errors.push_back("Unexpected key(s) in state_dict: " + quoted_list(result.unexpected_keys) + ".");
  errors.insert(errors.end(), mismatches.begin(), mismatches.end());
  if (!errors.empty()) {
    std::string msg = "Error(s) in loading state_dict for " + type_name() + ":";
    for (const auto& e : errors) msg += "\n\t" + e;
    throw std::runtime_error(msg);
  }

  autograd::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src.detach());
  }
  return result;
}

// ---- misc ---------------------------------------------------------------------------------------

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [name, child] : children_) child->apply(fn);
  fn(*this);
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = (status == 0 && demangled) ? demangled : mangled;
  std::free(demangled);
  // "rv::models::Block" -> "Block"; template arguments are rare enough to keep as they are.
  size_t angle = name.find('<');
  size_t colon = name.rfind("::", angle == std::string::npos ? std::string::npos : angle);
  if (colon != std::string::npos) name = name.substr(colon + 2);
  return name;
}

void Module::print(std::string& out, int indent) const {
  std::string pad(size_t(indent + 2), ' ');
  out += type_name() + "(";
  bool any = !params_.empty() || !buffers_.empty() || !children_.empty();
  if (any) out += "\n";
  for (const auto& s : params_)
    out += pad + s.name + ": " + shape_str(s.value.shape()) + " " + dtype_name(s.value.dtype()) +
           (s.value.requires_grad() ? "" : " (frozen)") + "\n";
  for (const auto& s : buffers_)
    out += pad + s.name + ": " + shape_str(s.value.shape()) + " " + dtype_name(s.value.dtype()) + " buffer" +
           (s.persistent ? "" : " (not persistent)") + "\n";
  for (const auto& [name, child] : children_) {
    out += pad + "(" + name + "): ";
    child->print(out, indent + 2);
    out += "\n";
  }
  if (any) out += std::string(size_t(indent), ' ');
  out += ")";
}

std::string Module::to_string() const {
  std::string out;
  print(out, 0);
  return out;
}

}  // namespace rv::nn
