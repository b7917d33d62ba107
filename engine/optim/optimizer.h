// optimizer.h: parameter groups and the Optimizer base class shared by AdamW, SGD and LAMB.
//
// An optimizer holds its parameters in groups. Each group has its own hyper-parameters
// (lr, weight_decay, betas, ...): the usual split is "decay" vs "no decay" (norms, biases,
// position embeddings, RoPE frequencies), and layer-wise LR decay adds one group per depth.
// A ParamGroup only *overrides* lr / weight_decay when it sets them: a group without an lr
// (an "LR-free" group) takes the optimizer's default, and a scheduler later sets every
// group's lr through set_lr().
//
//   auto groups = optim::weight_decay_groups(model.named_parameters(), 0.05);
//   optim::AdamW opt(groups, {.lr = 5e-4});
//   loss.backward(); opt.step(); opt.zero_grad();
//
// Per-parameter state (moment buffers, step counts) lives in the optimizer, and state_dict()
// exports all of it plus the hyper-parameters as named tensors, so a resumed run continues
// exactly. Updates run on raw float / double pointers under NoGradGuard, in place, so layers
// and the model keep their tensor handles.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/nn/state_dict.h"
#include "engine/tensor.h"

namespace rv::optim {

using nn::NamedTensor;
using nn::StateDict;

struct ParamGroup {
  std::vector<Tensor> params;
  std::vector<std::string> names;      // one per param, or empty (used in messages)
  std::optional<double> lr;            // unset: the optimizer's default
  std::optional<double> weight_decay;  // unset: the optimizer's default

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> ps) : params(std::move(ps)) {}  // NOLINT: implicit on purpose
  // A group from (name, tensor) pairs, e.g. a slice of model.named_parameters().
  static ParamGroup from_named(const std::vector<NamedTensor>& named, std::optional<double> lr = std::nullopt,
                               std::optional<double> weight_decay = std::nullopt);
};

// Names excluded from weight decay besides every tensor with ndim <= 1 and every `.bias`:
// pos_embed, cls_token, freqs, rope.freqs, rope_freqs, relative_position_bias_table
// (timm's no_weight_decay() of ViT / Swin, and the RoPE-ViT spec).
const std::set<std::string>& default_no_weight_decay();

// Whether `name` matches `pattern` under the rule used by weight_decay_groups: a pattern with
// '*' or '?' is a glob on the full name (as timm's fnmatch); otherwise it matches the full name
// or a dotted suffix of it ("relative_position_bias_table" matches
// "layers.0.blocks.1.attn.relative_position_bias_table").
bool name_matches(const std::string& name, const std::string& pattern);

// Splits trainable parameters by timm's rule (param_groups_weight_decay): no decay when
// ndim <= 1, the name ends with ".bias", or it matches a `no_decay` entry; returns
// {no-decay group (wd 0), decay group (wd = weight_decay)}, leaving out an empty one, with
// names kept. Parameters that do not require grad are left out, as in timm.
std::vector<ParamGroup> weight_decay_groups(const std::vector<NamedTensor>& named, double weight_decay,
                                            const std::set<std::string>& no_decay = default_no_weight_decay());

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (others are skipped, state untouched).
  virtual void step() = 0;
  const char* name() const { return name_; }  // "AdamW", for messages
  void zero_grad();                       // drops every parameter's .grad

  size_t num_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(size_t group) const { return checked(group).params; }
  const std::vector<std::string>& names(size_t group) const { return checked(group).names; }
  double lr(size_t group) const;
  void set_lr(size_t group, double lr);  // what a scheduler calls every step
  void set_lr(double lr);                // every group
  double weight_decay(size_t group) const;
  // Any hyper-parameter by name ("lr", "beta1", "momentum", "amsgrad" (as 0/1), ...).
  double hyper(size_t group, const std::string& key) const;
  void set_hyper(size_t group, const std::string& key, double value);

  // Everything needed to resume: per group its hyper-parameters, step and parameter count
  // (`param_groups.<g>.<key>`, float64 / int64 scalars), per parameter its step and buffers
  // (`state.<k>.step`, `state.<k>.exp_avg`, ... with k counting parameters across groups in
  // order, as PyTorch does). Buffers are aliases; clone() the dict for a snapshot.
  StateDict state_dict() const;
  // Restores a state_dict() of an optimizer built over the same groups of parameters (same
  // counts and shapes). All problems are listed in one error and nothing is changed then.
  void load_state_dict(const StateDict& state);

 protected:
  struct ParamState {
    int64_t step = 0;                        // updates applied to this parameter
    std::map<std::string, Tensor> buffers;   // e.g. exp_avg, exp_avg_sq, momentum_buffer
  };
  struct Group {
    std::vector<Tensor> params;
    std::vector<std::string> names;
    std::vector<ParamState> state;  // one per param
    int64_t step = 0;               // per-group step count (LAMB counts steps per group)
  };
  // A named hyper-parameter of one group, pointing into the derived class's options.
  struct Hyper {
    const char* key;
    double* real = nullptr;
    bool* flag = nullptr;
    double get() const { return real ? *real : (*flag ? 1.0 : 0.0); }
    void set(double v) const {
      if (real)
        *real = v;
      else
        *flag = v != 0.0;
    }
  };

  explicit Optimizer(const char* name) : name_(name) {}
  // Validates the parameters (float32/float64, contiguous leaves, in no other group).
  void add_group_params(const ParamGroup& group);
  virtual std::vector<Hyper> hypers(size_t group) = 0;
  std::vector<Hyper> hypers(size_t group) const { return const_cast<Optimizer*>(this)->hypers(group); }
  const Group& checked(size_t group) const;
  std::string param_label(size_t group, size_t i) const;  // its name, or "group g, param i"

  std::vector<Group> groups_;

 private:
  const char* name_;  // set before any group is added, so messages can use it
};

// The usual home of the per-group options: a derived optimizer keeps one Options per group.
// Options must have `lr` and `weight_decay` and a `fields(f)` member that calls f(key, member)
// for every hyper-parameter (double or bool), which is what makes state_dict() generic.
template <class Options>
class OptimizerWith : public Optimizer {
 public:
  Options& options(size_t group) { checked(group); return options_[group]; }
  const Options& options(size_t group) const { checked(group); return options_[group]; }
  const Options& defaults() const { return defaults_; }
  // Adds a group after construction (e.g. unfreezing a backbone); lr / wd default as above.
  void add_param_group(const ParamGroup& group) {
    Options o = defaults_;
    if (group.lr) o.lr = *group.lr;
    if (group.weight_decay) o.weight_decay = *group.weight_decay;
    add_group_params(group);
    options_.push_back(o);
  }

 protected:
  OptimizerWith(const char* name, const std::vector<ParamGroup>& groups, const Options& defaults)
      : Optimizer(name), defaults_(defaults) {
    for (const auto& g : groups) add_param_group(g);
  }
  std::vector<Hyper> hypers(size_t group) override {
    std::vector<Hyper> out;
    options_.at(group).fields([&](const char* key, auto& member) {
      if constexpr (std::is_same_v<std::remove_reference_t<decltype(member)>, bool>)
        out.push_back(Hyper{key, nullptr, &member});
      else
        out.push_back(Hyper{key, &member, nullptr});
    });
    return out;
  }

  Options defaults_;
  std::vector<Options> options_;  // one per group
};

namespace detail {
// The gradient of `p` as a contiguous tensor of p's dtype, or undefined when p has none.
// Throws (naming `op` and `label`) when the gradient's dtype differs from the parameter's.
Tensor dense_grad(const Tensor& p, const char* op, const std::string& label);
// The state buffer `key` of `st`, created as zeros shaped like `p` (on p's device) on first use.
Tensor& state_buffer(std::map<std::string, Tensor>& buffers, const std::string& key, const Tensor& p);
void check_range(const char* op, const char* what, double value, double lo, double hi, bool hi_open = true);
// The ranges PyTorch checks for the Adam family (AdamW, LAMB): lr, eps, weight_decay >= 0 and
// betas in [0, 1). O is any options struct with those fields.
template <class O>
void check_adam_hypers(const char* op, const O& o) {
  check_range(op, "lr", o.lr, 0.0, INFINITY);
  check_range(op, "beta1", o.beta1, 0.0, 1.0);
  check_range(op, "beta2", o.beta2, 0.0, 1.0);
  check_range(op, "eps", o.eps, 0.0, INFINITY);
  check_range(op, "weight_decay", o.weight_decay, 0.0, INFINITY);
}
// torch.lerp's formula: the form that is exact at the end nearer to the weight (the moment
// updates of AdamW and LAMB use it, as PyTorch's do).
template <class T>
inline T lerp(T a, T b, T w) {
  return std::abs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}
}  // namespace detail

}  // namespace rv::optim
