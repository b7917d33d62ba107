// replica_group.cpp: ReplicaGroup over a Communicator (see replica_group.h).
#include "train/distributed/replica_group.h"

#include <stdexcept>

namespace rv::train::dist {

namespace {

class CommunicatorGroup final : public ReplicaGroup {
 public:
  explicit CommunicatorGroup(std::shared_ptr<Communicator> comm) : comm_(std::move(comm)) {}
  int rank() const override { return comm_->rank(); }
  int world_size() const override { return comm_->world_size(); }
  void all_gather(const double* in, int64_t count, double* out) override {
    comm_->all_gather(in, count * int64_t(sizeof(double)), out);
  }
  void all_reduce_sum(double* data, int64_t count) override { comm_->all_reduce_sum(data, count, DType::f64); }

 private:
  std::shared_ptr<Communicator> comm_;
};

}  // namespace

std::shared_ptr<ReplicaGroup> make_replica_group(std::shared_ptr<Communicator> comm) {
  if (!comm) throw std::invalid_argument("make_replica_group: the communicator is null");
  return std::make_shared<CommunicatorGroup>(std::move(comm));
}

}  // namespace rv::train::dist
