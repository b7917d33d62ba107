// optimizer.cpp: parameter groups, the weight-decay split, and the Optimizer base
// (group bookkeeping, hyper-parameter access, state_dict save / load).
#include "engine/optim/optimizer.h"

#include <cmath>
#include <stdexcept>
#include <unordered_set>

#include "engine/autograd.h"

namespace rv::optim {

// ---- parameter groups ---------------------------------------------------------------------------

ParamGroup ParamGroup::from_named(const std::vector<NamedTensor>& named, std::optional<double> lr,
                                  std::optional<double> weight_decay) {
  ParamGroup g;
  for (const auto& [name, t] : named) {
    g.names.push_back(name);
    g.params.push_back(t);
  }
  g.lr = lr;
  g.weight_decay = weight_decay;
  return g;
}

const std::set<std::string>& default_no_weight_decay() {
  static const std::set<std::string> names = {"pos_embed", "cls_token", "freqs", "rope.freqs", "rope_freqs",
                                              "relative_position_bias_table"};
  return names;
}

namespace {

// fnmatch without character classes: '*' any run, '?' one character.
bool glob_match(const char* s, const char* p) {
  if (*p == '\0') return *s == '\0';
  if (*p == '*') return glob_match(s, p + 1) || (*s != '\0' && glob_match(s + 1, p));
  if (*s == '\0') return false;
  return (*p == '?' || *p == *s) && glob_match(s + 1, p + 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool name_matches(const std::string& name, const std::string& pattern) {
  if (pattern.find_first_of("*?") != std::string::npos) return glob_match(name.c_str(), pattern.c_str());
  return name == pattern || ends_with(name, "." + pattern);
}

std::vector<ParamGroup> weight_decay_groups(const std::vector<NamedTensor>& named, double weight_decay,
                                            const std::set<std::string>& no_decay) {
  std::vector<NamedTensor> decay, skip;
  for (const auto& [name, p] : named) {
    if (!p.requires_grad()) continue;
    bool excluded = p.dim() <= 1 || ends_with(name, ".bias");
    for (const auto& pattern : no_decay) excluded = excluded || name_matches(name, pattern);
    (excluded ? skip : decay).emplace_back(name, p);
  }
  std::vector<ParamGroup> out;
  if (!skip.empty()) out.push_back(ParamGroup::from_named(skip, std::nullopt, 0.0));
  if (!decay.empty()) out.push_back(ParamGroup::from_named(decay, std::nullopt, weight_decay));
  return out;
}

// ---- Optimizer: groups --------------------------------------------------------------------------

void Optimizer::add_group_params(const ParamGroup& pg) {
  std::string where = std::string(name()) + ": parameter group " + std::to_string(groups_.size());
  if (!pg.names.empty() && pg.names.size() != pg.params.size())
    throw std::invalid_argument(where + " has " + std::to_string(pg.names.size()) + " names for " +
                                std::to_string(pg.params.size()) + " parameters");
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& g : groups_)
    for (const auto& p : g.params) seen.insert(p.impl());
  Group g;
  for (size_t i = 0; i < pg.params.size(); ++i) {
    const Tensor& p = pg.params[i];
    std::string label = where + ", parameter " + (pg.names.empty() ? std::to_string(i) : "\"" + pg.names[i] + "\"");
    if (!p.defined()) throw std::invalid_argument(label + " is undefined");
    if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
      throw std::invalid_argument(label + ": expected a float32 or float64 tensor (master weights), got " +
                                  dtype_name(p.dtype()));
    if (!p.is_leaf()) throw std::invalid_argument(label + " is not a leaf tensor; optimizers update leaves");
    if (!p.is_contiguous()) throw std::invalid_argument(label + " is not contiguous");
    if (!seen.insert(p.impl()).second)
      throw std::invalid_argument(label + " appears more than once (in this group or an earlier one)");
    g.params.push_back(p);
  }
  g.names = pg.names;
  g.state.resize(g.params.size());
  groups_.push_back(std::move(g));
}

const Optimizer::Group& Optimizer::checked(size_t group) const {
  if (group >= groups_.size())
    throw std::out_of_range(std::string(name()) + ": no parameter group " + std::to_string(group) + " (it has " +
                            std::to_string(groups_.size()) + ")");
  return groups_[group];
}

std::string Optimizer::param_label(size_t group, size_t i) const {
  const Group& g = groups_[group];
  if (!g.names.empty()) return "\"" + g.names[i] + "\"";
  return "group " + std::to_string(group) + ", parameter " + std::to_string(i);
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) {
      Tensor q = p;
      q.zero_grad();
    }
}

double Optimizer::hyper(size_t group, const std::string& key) const {
  checked(group);
  for (const auto& h : hypers(group))
    if (key == h.key) return h.get();
  throw std::invalid_argument(std::string(name()) + ": no hyper-parameter \"" + key + "\"");
}

void Optimizer::set_hyper(size_t group, const std::string& key, double value) {
  checked(group);
  for (const auto& h : hypers(group))
    if (key == h.key) {
      h.set(value);
      return;
    }
  throw std::invalid_argument(std::string(name()) + ": no hyper-parameter \"" + key + "\"");
}

double Optimizer::lr(size_t group) const { return hyper(group, "lr"); }
double Optimizer::weight_decay(size_t group) const { return hyper(group, "weight_decay"); }

void Optimizer::set_lr(size_t group, double lr) {
  if (!(lr >= 0.0)) throw std::invalid_argument(std::string(name()) + ".set_lr: lr must be >= 0, got " + std::to_string(lr));
  set_hyper(group, "lr", lr);
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

// ---- Optimizer: state dict ----------------------------------------------------------------------

StateDict Optimizer::state_dict() const {
  StateDict out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::string pre = "param_groups." + std::to_string(g) + ".";
    for (const auto& h : hypers(g)) out.insert(pre + h.key, scalar_tensor(h.get(), DType::f64));
    out.insert(pre + "step", scalar_tensor(double(groups_[g].step), DType::i64));
    out.insert(pre + "num_params", scalar_tensor(double(groups_[g].params.size()), DType::i64));
  }
  int64_t k = 0;
  for (const auto& g : groups_)
    for (size_t i = 0; i < g.params.size(); ++i, ++k) {
      const ParamState& st = g.state[i];
      if (st.step == 0 && st.buffers.empty()) continue;  // never updated: nothing to save
      std::string pre = "state." + std::to_string(k) + ".";
      out.insert(pre + "step", scalar_tensor(double(st.step), DType::i64));
      for (const auto& [key, buf] : st.buffers) out.insert(pre + key, buf.detach());
    }
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  std::vector<std::string> errors;
  std::unordered_set<std::string> used;
  auto scalar = [&](const std::string& key, bool integral) -> std::optional<double> {
    const Tensor* t = state.find(key);
    if (!t) {
      errors.push_back("missing key \"" + key + "\"");
      return std::nullopt;
    }
    used.insert(key);
    if (!t->defined() || t->numel() != 1 || (integral ? !is_integral(t->dtype()) : !is_floating(t->dtype()))) {
      errors.push_back("\"" + key + "\" should be a one-element " + (integral ? "integer" : "float") + " tensor");
      return std::nullopt;
    }
    return t->item();
  };

  // Read and check everything first; apply only when nothing is wrong.
  struct Pending {
    std::vector<std::pair<Hyper, double>> hypers;
    int64_t step = 0;
    std::vector<ParamState> state;
  };
  std::vector<Pending> pending(groups_.size());
  int64_t k = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::string pre = "param_groups." + std::to_string(g) + ".";
    auto n = scalar(pre + "num_params", true);
    if (n && int64_t(*n) != int64_t(groups_[g].params.size()))
      errors.push_back("group " + std::to_string(g) + " has " + std::to_string(groups_[g].params.size()) +
                       " parameters, the saved state has " + std::to_string(int64_t(*n)));
    for (const auto& h : hypers(g))
      if (auto v = scalar(pre + h.key, false)) pending[g].hypers.emplace_back(h, *v);
    if (auto s = scalar(pre + "step", true)) pending[g].step = int64_t(*s);
    pending[g].state.resize(groups_[g].params.size());
    for (size_t i = 0; i < groups_[g].params.size(); ++i, ++k) {
      const Tensor& p = groups_[g].params[i];
      std::string sp = "state." + std::to_string(k) + ".";
      ParamState& st = pending[g].state[i];
      if (state.contains(sp + "step"))
        if (auto s = scalar(sp + "step", true)) st.step = int64_t(*s);
      for (const auto& [key, value] : state) {
        if (key.compare(0, sp.size(), sp) != 0 || key == sp + "step") continue;
        std::string buf = key.substr(sp.size());
        used.insert(key);
        if (!value.defined() || value.shape() != p.shape() || value.dtype() != p.dtype()) {
          errors.push_back("\"" + key + "\" should be " + dtype_name(p.dtype()) + " of shape " + shape_str(p.shape()) +
                           " like parameter " + param_label(g, i) +
                           (value.defined() ? ", got " + std::string(dtype_name(value.dtype())) + " " + shape_str(value.shape())
                                            : ", got an undefined tensor"));
          continue;
        }
        st.buffers[buf] = value.detach().clone();  // owned: the saved dict may be reused
      }
    }
  }
  for (const auto& [key, value] : state)
    if (!used.count(key)) errors.push_back("unexpected key \"" + key + "\"");
  if (!errors.empty()) {
    std::string msg = std::string("Error(s) in loading state_dict for ") + name() + ":";
    for (const auto& e : errors) msg += "\n\t" + e;
    throw std::runtime_error(msg);
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [h, v] : pending[g].hypers) h.set(v);
    groups_[g].step = pending[g].step;
    groups_[g].state = std::move(pending[g].state);
  }
}

// ---- helpers for the update loops ---------------------------------------------------------------

namespace detail {

Tensor dense_grad(const Tensor& p, const char* op, const std::string& label) {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  if (g.dtype() != p.dtype())
    throw std::runtime_error(std::string(op) + ": the gradient of parameter " + label + " is " +
                             dtype_name(g.dtype()) + " but the parameter is " + dtype_name(p.dtype()));
  return g.contiguous();
}

Tensor& state_buffer(std::map<std::string, Tensor>& buffers, const std::string& key, const Tensor& p) {
  auto it = buffers.find(key);
  if (it == buffers.end()) it = buffers.emplace(key, zeros(p.shape(), p.dtype(), p.device())).first;  // on p's device
  return it->second;
}

void check_range(const char* op, const char* what, double value, double lo, double hi, bool hi_open) {
  bool ok = value >= lo && (hi_open ? value < hi : value <= hi);
  if (!ok)
    throw std::invalid_argument(std::string(op) + ": " + what + " must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + (hi_open ? ")" : "]") + ", got " + std::to_string(value));
}

}  // namespace detail

}  // namespace rv::optim
