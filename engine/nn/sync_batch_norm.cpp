// sync_batch_norm.cpp: SyncBatchNorm's mode logic and the BatchNorm2d -> SyncBatchNorm conversion
// (see sync_batch_norm.h); the arithmetic is sync_batch_norm in engine/ops/norm.cpp.
#include "engine/nn/sync_batch_norm.h"

#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_set>
#include <vector>

#include "engine/ops/norm.h"

namespace rv::nn {

SyncBatchNorm::SyncBatchNorm(int64_t num_features, std::shared_ptr<ReplicaGroup> group, double eps,
                             std::optional<double> momentum, bool affine, bool track_running_stats)
    : BatchNorm2d(num_features, eps, momentum, affine, track_running_stats), group_(std::move(group)) {}

SyncBatchNorm::SyncBatchNorm(const BatchNorm2d& bn, std::shared_ptr<ReplicaGroup> group)
    : BatchNorm2d(bn, ShareTensors{}), group_(std::move(group)) {}

Tensor SyncBatchNorm::forward(const Tensor& x) {
  // Eval (running stats, or local batch stats without them, as torch) and a world of one rank
  // need nothing from the other ranks: BatchNorm2d's path, bit for bit.
  if (!synchronised()) return BatchNorm2d::forward(x);
  check_input(x);
  const double momentum = step_momentum();
  return sync_batch_norm(x, running_mean, running_var, weight, bias, group_, momentum, eps());
}

namespace {

// Depth-first over the registry itself (not a list made beforehand: replaced layers are freed as
// we go). `seen` keeps a module shared under two names from being walked twice.
void convert_below(Module& parent, const std::string& path, const std::shared_ptr<ReplicaGroup>& group,
                   std::unordered_set<const Module*>& seen, int64_t& touched) {
  std::vector<std::string> names;  // copied: replace_child edits the list
  for (const auto& [name, child] : parent.named_children()) names.push_back(name);
  for (const std::string& name : names) {
    const std::string full = path.empty() ? name : path + "." + name;
    std::shared_ptr<Module> child = parent.child(name);
    if (!seen.insert(child.get()).second) continue;
    if (auto s = std::dynamic_pointer_cast<SyncBatchNorm>(child)) {
      s->set_group(group);
      ++touched;
      continue;
    }
    // Exactly BatchNorm2d: a subclass may add behaviour that a SyncBatchNorm would drop.
    if (typeid(*child) != typeid(BatchNorm2d)) {
      convert_below(*child, full, group, seen, touched);
      continue;
    }
    auto bn = std::static_pointer_cast<BatchNorm2d>(child);
    child.reset();
    parent.replace_child(name, std::make_shared<SyncBatchNorm>(*bn, group));
    ++touched;
    // Now only `bn` should hold the old layer; another holder is a typed member of the parent that
    // child_replaced did not update, whose forward would skip the synchronisation.
    if (bn.use_count() > 1)
      throw std::logic_error("convert_sync_batchnorm: the BatchNorm2d '" + full + "' is still held elsewhere (e.g. a "
                             "member of its parent " + parent.type_name() + " that does not override "
                             "Module::child_replaced), so that holder would keep using the unsynchronised layer");
  }
}

}  // namespace

int64_t convert_sync_batchnorm(Module& root, const std::shared_ptr<ReplicaGroup>& group) {
  int64_t touched = 0;
  std::unordered_set<const Module*> seen;
  convert_below(root, "", group, seen, touched);
  return touched;
}

}  // namespace rv::nn
