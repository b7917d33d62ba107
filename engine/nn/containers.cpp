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

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) push_back(m);
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  if (i >= items_.size())
    throw std::out_of_range("Sequential[" + std::to_string(i) + "]: it has " + std::to_string(items_.size()) +
                            " elements");
  return items_[i];
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
