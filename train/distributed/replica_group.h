// replica_group.h: the engine's ReplicaGroup (engine/ops/replica_group.h: what SyncBatchNorm needs
// from the other ranks) over a dist::Communicator, so that nn::SyncBatchNorm layers synchronise
// through the same MPI / TCP / NCCL ranks as the gradients.
//
//   auto group = dist::make_replica_group(comm);
//   nn::convert_sync_batchnorm(*model, group);
//
// SyncBatchNorm's messages are a few per-channel doubles in host memory (2C + 1 per rank per
// layer in the forward, 2C in the backward), so they go through the communicator's host path
// whatever it is (NCCL takes host pointers too); the sums are in rank order (communicator.h), so
// every rank holds the same statistics bit for bit.
#pragma once
#include <memory>

#include "engine/ops/replica_group.h"
#include "train/distributed/communicator.h"

namespace rv::train::dist {

// The group of every rank of `comm` (kept alive by the group).
std::shared_ptr<ReplicaGroup> make_replica_group(std::shared_ptr<Communicator> comm);

}  // namespace rv::train::dist
