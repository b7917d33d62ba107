// containers.cpp: ModuleList, Sequential and Functional.
#include "engine/nn/containers.h"

#include <stdexcept>

namespace rv::nn {

ModuleList::ModuleList(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  if (i >= items_.size())
    throw std::out_of_range("ModuleList[" + std::to_string(i) + "]: the list has " + std::to_string(items_.size()) +
                            " elements");
  return items_[i];
}

void ModuleList::child_replaced(const std::string& name, const std::shared_ptr<Module>& now) {
  items_.at(std::stoul(name)) = now;  // children are named by their index
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) push_back(m);
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  if (i >= items_.size())
    throw std::out_of_range("Sequential[" + std::to_string(i) + "]: it has " + std::to_string(items_.size()) +
                            " elements");
  return items_[i];
}

void Sequential::child_replaced(const std::string& name, const std::shared_ptr<Module>& now) {
  auto unary = std::dynamic_pointer_cast<UnaryModule>(now);
  // A non-unary module could not run in forward (replace_child then changes nothing).
  if (!unary)
    throw std::invalid_argument("Sequential::replace_child(\"" + name + "\"): a " + now->type_name() +
                                " is not a UnaryModule, so it cannot take a place in the chain");
  items_.at(std::stoul(name)) = std::move(unary);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : items_) y = m->forward(y);
  return y;
}

Functional::Functional(std::string name, std::function<Tensor(const Tensor&)> fn)
    : name_(std::move(name)), fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("Functional(\"" + name_ + "\"): the function is empty");
}

}  // namespace rv::nn
