// sync_batch_norm.h: SyncBatchNorm (torch.nn.SyncBatchNorm) and convert_sync_batchnorm.
//
// Data-parallel training splits the batch over ranks; a plain BatchNorm2d then normalises each
// rank's shard with that shard's statistics (mmseg's UperNet trains 2 images per GPU: poor
// statistics). SyncBatchNorm normalises with the statistics of the whole global batch:
//
//   training, group of W > 1 ranks   sync_batch_norm (engine/ops/norm.h): per-channel stats merged
//                                    over the ranks, the backward's two sums all-reduced; the
//                                    running stats get the global mean and unbiased variance
//   eval, or no group / one rank     exactly BatchNorm2d (the inherited forward)
//
// It IS a BatchNorm2d (same parameters, buffers, state dict names and order), so checkpoints load
// into either, and code that finds BatchNorm2d layers by type finds these too.
//
// The group is the engine's view of the ranks (engine/ops/replica_group.h); data-parallel
// training gets one from its communicator with dist::make_replica_group (train/distributed/).
//
//   nn::convert_sync_batchnorm(*model, group);  // every BatchNorm2d below model -> SyncBatchNorm
#pragma once
#include <memory>

#include "engine/nn/norm.h"
#include "engine/ops/replica_group.h"

namespace rv::nn {

class SyncBatchNorm : public BatchNorm2d {
 public:
  explicit SyncBatchNorm(int64_t num_features, std::shared_ptr<ReplicaGroup> group = nullptr, double eps = 1e-5,
                         std::optional<double> momentum = 0.1, bool affine = true, bool track_running_stats = true);
  // Takes over bn's parameters and buffers (the same tensors) and its training mode.
  SyncBatchNorm(const BatchNorm2d& bn, std::shared_ptr<ReplicaGroup> group);

  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> (B, C, H, W); collective when synced

  const std::shared_ptr<ReplicaGroup>& group() const { return group_; }
  void set_group(std::shared_ptr<ReplicaGroup> group) { group_ = std::move(group); }
  // Whether forward in the current mode combines statistics across ranks.
  bool synchronised() const { return is_training() && group_ && group_->world_size() > 1; }

 private:
  std::shared_ptr<ReplicaGroup> group_;
};

// Replaces every BatchNorm2d strictly below `root` by a SyncBatchNorm on `group` that shares its
// tensors (Module::replace_child: same names and order, so state dicts and optimizers built
// before still fit); SyncBatchNorms already there get `group`. Returns how many layers it
// touched. Throws std::logic_error naming the layer when its parent keeps a typed handle to the
// old BatchNorm2d without updating it (Module::child_replaced), since the parent's forward would
// then go on using the unsynchronised layer.
int64_t convert_sync_batchnorm(Module& root, const std::shared_ptr<ReplicaGroup>& group);

}  // namespace rv::nn
