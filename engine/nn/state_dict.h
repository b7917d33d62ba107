// state_dict.h: StateDict, an ordered map from dotted names to tensors.
//
// It is what Module::state_dict() returns and load_state_dict() reads, and what the optimizers
// use for their own state: keys keep their insertion order (as Python dicts do), so a model's
// state dict lists `cls_token, pos_embed, patch_embed.proj.weight, ...` in PyTorch's order and a
// file written from it has a stable layout. Lookups by name go through a hash index.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rv::nn {

using NamedTensor = std::pair<std::string, Tensor>;

class StateDict {
 public:
  StateDict() = default;
  StateDict(std::initializer_list<NamedTensor> items);

  // Adds a new key at the end; a key that is already present is an error naming it.
  void insert(const std::string& name, const Tensor& value);
  // Replaces the value of an existing key (keeping its position) or appends a new one.
  void set(const std::string& name, const Tensor& value);
  bool erase(const std::string& name);  // false when absent

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const Tensor* find(const std::string& name) const;  // nullptr when absent
  const Tensor& at(const std::string& name) const;    // throws std::out_of_range naming the key

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::vector<NamedTensor>& items() const { return items_; }
  std::vector<std::string> keys() const;
  std::vector<NamedTensor>::const_iterator begin() const { return items_.begin(); }
  std::vector<NamedTensor>::const_iterator end() const { return items_.end(); }

  // A deep copy: every value detached and cloned, so later training steps do not change it.
  // (state_dict() itself returns aliases of the live tensors, as PyTorch does.)
  StateDict clone() const;

 private:
  std::vector<NamedTensor> items_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in items_
};

}  // namespace rv::nn
