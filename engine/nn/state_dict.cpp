// state_dict.cpp: the ordered name -> tensor map used for module and optimizer state.
#include "engine/nn/state_dict.h"

#include <stdexcept>

namespace rv::nn {

StateDict::StateDict(std::initializer_list<NamedTensor> items) {
  for (const auto& [name, value] : items) insert(name, value);
}

void StateDict::insert(const std::string& name, const Tensor& value) {
  if (contains(name)) throw std::invalid_argument("StateDict::insert: key \"" + name + "\" is already present");
  index_.emplace(name, items_.size());
  items_.emplace_back(name, value);
}

void StateDict::set(const std::string& name, const Tensor& value) {
  auto it = index_.find(name);
  if (it == index_.end())
    insert(name, value);
  else
    items_[it->second].second = value;
}

bool StateDict::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return false;
  size_t pos = it->second;
  items_.erase(items_.begin() + int64_t(pos));
  index_.erase(it);
  for (auto& [key, p] : index_)
    if (p > pos) --p;  // later entries moved down by one
  return true;
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) throw std::out_of_range("StateDict::at: no key \"" + name + "\"");
  return *t;
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& item : items_) out.push_back(item.first);
  return out;
}

StateDict StateDict::clone() const {
  StateDict out;
  for (const auto& [name, value] : items_) out.insert(name, value.defined() ? value.detach().clone() : Tensor());
  return out;
}

}  // namespace rv::nn
