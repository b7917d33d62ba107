// tcp_communicator.h: collectives over TCP sockets, for CPU runs launched without mpirun
// (torchrun, srun): no MPI library needed, only MASTER_ADDR and a free port.
//
// Rendezvous: rank 0 listens on MASTER_PORT + 1 (launch_env.h says why not MASTER_PORT itself);
// every other rank connects to MASTER_ADDR:MASTER_PORT+1, retrying with backoff until
// dist.timeout_s, and introduces itself (a magic word, its rank, the world size). A peer that
// never comes ends rank 0 with an error naming the address and the missing ranks; a rank 0 that
// never answers ends the others naming the address they tried.
//
// Topology: a star around rank 0. all_reduce: every rank sends its buffer to rank 0, which adds
// them in rank order and sends the sums back (deterministic; 2 (W-1) messages, all through rank
// 0, which is fine for CPU data parallelism across a handful of processes). reduce_scatter:
// the same gather and rank-order sum, then rank 0 sends each rank only its chunk. Each message to
// rank 0 starts with a header (which collective, how many bytes), so ranks that disagree on the
// call sequence fail with both calls named instead of exchanging garbage.
//
// Every read and write waits at most dist.timeout_s; a closed connection (the peer died) throws
// at once, naming the peer rank and the collective.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "train/distributed/communicator.h"

namespace rv::train::dist {

class TcpCommunicator final : public Communicator {
 public:
  TcpCommunicator(const LaunchLayout& layout, double timeout_s);  // connects (the rendezvous)
  ~TcpCommunicator() override;
  int rank() const override { return layout_.rank; }
  int world_size() const override { return layout_.world_size; }
  int local_rank() const override { return layout_.local_rank; }
  std::string name() const override;

  void all_reduce_sum(void* data, int64_t count, DType dtype) override;
  void broadcast(void* data, int64_t bytes, int root) override;
  void all_gather(const void* in, int64_t bytes, void* out) override;
  void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) override;
  void barrier() override;

 private:
  enum Op : uint32_t { kAllReduce = 1, kBroadcast = 2, kAllGather = 3, kReduceScatter = 4 };
  void send_to(int peer, const void* data, int64_t bytes, const char* op);
  void recv_from(int peer, void* data, int64_t bytes, const char* op);
  void send_header(int peer, Op op, int64_t bytes);
  void expect_header(int peer, Op op, int64_t bytes);
  int fd_of(int peer) const;  // rank 0: the socket to `peer`; others: the socket to rank 0

  LaunchLayout layout_;
  double timeout_s_;
  int port_ = 0;
  std::vector<int> fds_;      // rank 0: fds_[r] for r >= 1; others: fds_[0] (to rank 0)
  std::vector<char> scratch_;  // rank 0: one peer's buffer while summing
  std::vector<char> sums_;     // rank 0: reduce_scatter's sums of every chunk
};

}  // namespace rv::train::dist
