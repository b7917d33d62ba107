// communicator.h: the collectives data-parallel training needs, behind one interface, so the
// trainer does not care whether the processes talk over MPI, TCP sockets or (later) NCCL.
//
//   auto comm = dist::make_communicator(cfg.dist);   // from the launch environment (launch_env.h)
//   comm->all_reduce_sum(grads.data(), n, DType::f32); // every rank ends with the same sums
//
// Implementations:
//   LocalCommunicator  world size 1: every collective is a no-op (or a copy)      (this file)
//   MpiCommunicator    under mpirun, when the build found MPI                     (mpi_communicator.h)
//   TcpCommunicator    under torchrun or srun: a star of sockets around rank 0    (tcp_communicator.h)
//   NcclCommunicator   GPU runs: device memory over NCCL, bootstrapped by one of  (nccl_communicator.h)
//                      the two above
// make_communicator wraps the multi-rank ones in a WatchedCommunicator (watchdog.h).
//
// Determinism: every host implementation sums in rank order, ((x0 + x1) + x2) + ..., on rank 0
// and sends the result to all, so a sum does not depend on timing, and every rank holds the
// same bits afterwards. NCCL does not sum in rank order, but every rank still holds the same
// bits (nccl_communicator.h says what NCCL guarantees).
//
// All calls are collective: every rank must make the same calls in the same order with the same
// sizes. Errors (a peer gone, a timeout) throw std::runtime_error naming the collective and ranks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/dtype.h"
#include "train/config/train_config.h"
#include "train/distributed/launch_env.h"

namespace rv::train::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;
  virtual std::string name() const = 0;  // "local", "mpi", "tcp 127.0.0.1:29501"

  // In place: data[i] = sum over ranks of data[i]. dtype f32, f64 or i64.
  virtual void all_reduce_sum(void* data, int64_t count, DType dtype) = 0;
  // In place: rank `root`'s bytes end up on every rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // out (world_size * bytes) = rank 0's `in`, then rank 1's, ... (in and out must not overlap).
  virtual void all_gather(const void* in, int64_t bytes, void* out) = 0;
  // in holds world_size chunks of count_per_rank elements; rank r's out (count_per_rank
  // elements) = the sum over ranks of their chunk r, in rank order (in and out must not overlap).
  // dtype f32, f64 or i64. The sharded half of an all-reduce (ZeRO-style optimizer sharding).
  virtual void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) = 0;
  virtual void barrier() = 0;
  // Whether the collectives also take pointers to device memory (NCCL: memory of this process's
  // GPU, on its communication stream; host pointers still work). Host communicators (local, MPI,
  // TCP) take host memory only, so callers with device tensors stage them through the host.
  virtual bool device_collectives() const { return false; }
  // all_reduce_sum whose result the compute stream does not wait for yet: with a device
  // communicator (NCCL), the kernels queued after it (the rest of a backward) run while it does;
  // wait_deferred() then makes the compute stream wait for every deferred collective, and nothing
  // on the compute stream may touch `data` before that. The host still never waits. Host
  // communicators: a plain all_reduce_sum (it is finished on return), and wait_deferred() is a no-op.
  virtual void all_reduce_sum_deferred(void* data, int64_t count, DType dtype) { all_reduce_sum(data, count, dtype); }
  virtual void wait_deferred() {}
  // Whether another thread than the one that made the communicator may call its collectives
  // (one thread at a time, never two at once). GradientSync's communication thread needs it; MPI
  // says no when the library does not give MPI_THREAD_SERIALIZED.
  virtual bool any_thread() const { return true; }
  // The optimizer step the caller is at, for the watchdog's messages (no communication).
  virtual void set_step(int64_t step) { (void)step; }
};

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string name() const override { return "local"; }
  void all_reduce_sum(void*, int64_t, DType) override {}
  void broadcast(void*, int64_t, int) override {}
  void all_gather(const void* in, int64_t bytes, void* out) override;
  void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) override;
  void barrier() override {}
};

// The bytes of one element of an all-reducible dtype; throws naming `op` for another dtype.
size_t reduce_item_size(DType dtype, const char* op);
// dst[i] += src[i] for `count` elements of `dtype` (the rank-order summation step).
void add_into(void* dst, const void* src, int64_t count, DType dtype);

// The communicator for this process: LocalCommunicator for a world of one; for more, MPI under
// mpirun, TCP under torchrun / srun (dist.backend = auto), or what dist.backend names. `on_gpu`:
// the run trains on GPUs; then dist.backend = nccl, or auto in a build with NCCL, gives NCCL on
// GPU `local rank`, bootstrapped by that MPI or TCP communicator (auto without NCCL keeps the
// host communicator: GradientSync then stages gradients through the host). Throws
// std::runtime_error with the fix when the launch needs something this build or node lacks
// (MPI, NCCL, enough GPUs).
std::shared_ptr<Communicator> make_communicator(const config::DistSection& cfg, const LaunchLayout& layout,
                                                bool on_gpu = false);
std::shared_ptr<Communicator> make_communicator(const config::DistSection& cfg,
                                                bool on_gpu = false);  // read_launch_layout()

// Convenience: a string from `root` to every rank (its length first, then its bytes).
std::string broadcast_string(Communicator& comm, const std::string& s, int root = 0);

}  // namespace rv::train::dist
