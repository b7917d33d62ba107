// containers.h: modules that hold other modules: ModuleList, Sequential, and Functional.
//
//   ModuleList    an indexable list of children named "0", "1", ... (timm's `blocks`), so the
//                 parameter names come out as `blocks.3.attn.qkv.weight`
//   UnaryModule   the interface of a module whose forward maps one tensor to one tensor
//   Sequential    a chain of UnaryModules, applied in order (also named "0", "1", ...)
//   Functional    wraps a parameter-free function (an activation) as a UnaryModule, so it
//                 can take a place in a Sequential and keep PyTorch's indices
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace rv::nn {

class ModuleList : public Module {
 public:
  ModuleList() = default;
  explicit ModuleList(const std::vector<std::shared_ptr<Module>>& modules);

  // Appends `m` as child number size(); returns it, keeping its type.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;  // throws std::out_of_range
  // Element i as its concrete type; throws naming both types if it is something else.
  template <class M>
  std::shared_ptr<M> get(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!p) throw std::invalid_argument("ModuleList::get(" + std::to_string(i) + "): element is a " +
                                        (*this)[i]->type_name() + ", not the requested type");
    return p;
  }
  std::vector<std::shared_ptr<Module>>::const_iterator begin() const { return items_.begin(); }
  std::vector<std::shared_ptr<Module>>::const_iterator end() const { return items_.end(); }

 protected:
  void child_replaced(const std::string& name, const std::shared_ptr<Module>& now) override;

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules);

  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;  // throws std::out_of_range
  // x through every element in order; an empty Sequential is the identity.
  Tensor forward(const Tensor& x) override;

 protected:
  void child_replaced(const std::string& name, const std::shared_ptr<Module>& now) override;  // must be unary

 private:
  std::vector<std::shared_ptr<UnaryModule>> items_;
};

class Functional : public UnaryModule {
 public:
  // `name` is what type_name() and to_string() show, e.g. "GELU".
  Functional(std::string name, std::function<Tensor(const Tensor&)> fn);
  Tensor forward(const Tensor& x) override { return fn_(x); }
  std::string type_name() const override { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
};

}  // namespace rv::nn
