// mpi_communicator.cpp: the MPI communicator, or a clear error in builds without MPI (see mpi_communicator.h).
#include "train/distributed/mpi_communicator.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#ifdef RV_HAVE_MPI
#include <mpi.h>
#endif

namespace rv::train::dist {

#ifdef RV_HAVE_MPI
namespace {

constexpr int64_t kPiece = int64_t(1) << 30;  // bytes per MPI call (counts are int)

void check(int code, const char* op, int rank) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error("dist (mpi): rank " + std::to_string(rank) + ": " + op + " failed: " +
                           std::string(text, size_t(len)) + " (a peer process may have ended)");
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchLayout& layout) : local_rank_(layout.local_rank) {
    int ready = 0, provided = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      // Serialized: the training thread and GradientSync's communication thread call MPI, never
      // both at once (grad_sync.h); the watchdog and the loader workers never do.
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    } else {
      MPI_Query_thread(&provided);
    }
    any_thread_ = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    if (rank_ != layout.rank || world_ != layout.world_size)
      throw std::runtime_error("dist (mpi): MPI says rank " + std::to_string(rank_) + " of " + std::to_string(world_) +
                               " but the environment says " + layout.describe());
  }
  ~MpiCommunicator() override {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  std::string name() const override { return "mpi"; }
  bool any_thread() const override { return any_thread_; }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override {
    const int64_t item = int64_t(reduce_item_size(dtype, "all_reduce"));
    const int64_t per_piece = kPiece / item;
    char* p = static_cast<char*>(data);
    for (int64_t done = 0; done < count; done += per_piece) {
      const int64_t n = std::min(per_piece, count - done);
      const int bytes = int(n * item);
      // Gather every rank's piece on rank 0, add in rank order there, send the sums to all.
      if (rank_ == 0) gathered_.resize(size_t(bytes) * size_t(world_));
      check(MPI_Gather(p + done * item, bytes, MPI_BYTE, rank_ == 0 ? gathered_.data() : nullptr, bytes, MPI_BYTE, 0,
                       MPI_COMM_WORLD),
            "all_reduce (gather)", rank_);
      if (rank_ == 0)
        for (int r = 1; r < world_; ++r) add_into(p + done * item, gathered_.data() + size_t(r) * size_t(bytes), n, dtype);
      check(MPI_Bcast(p + done * item, bytes, MPI_BYTE, 0, MPI_COMM_WORLD), "all_reduce (broadcast)", rank_);
    }
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t done = 0; done < bytes; done += kPiece)
      check(MPI_Bcast(p + done, int(std::min(kPiece, bytes - done)), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast",
            rank_);
  }

  void all_gather(const void* in, int64_t bytes, void* out) override {
    if (bytes > kPiece) throw std::invalid_argument("all_gather: at most 1 GiB per rank over MPI");
    check(MPI_Allgather(in, int(bytes), MPI_BYTE, out, int(bytes), MPI_BYTE, MPI_COMM_WORLD), "all_gather", rank_);
  }

  void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) override {
    const int64_t item = int64_t(reduce_item_size(dtype, "reduce_scatter"));
    // A piece: n elements of every rank's chunk; rank 0 holds W pieces gathered and W summed.
    const int64_t per_piece = std::max<int64_t>(1, kPiece / item / world_);
    const char* src = static_cast<const char*>(in);
    char* dst = static_cast<char*>(out);
    for (int64_t done = 0; done < count_per_rank; done += per_piece) {
      const int64_t n = std::min(per_piece, count_per_rank - done);
      const size_t bytes = size_t(n * item);
      if (rank_ == 0) {
        gathered_.resize(bytes * size_t(world_));
        sums_.resize(bytes * size_t(world_));
      }
      for (int c = 0; c < world_; ++c) {
        // Every rank's elements [done, done + n) of chunk c, gathered on rank 0 in rank order.
        check(MPI_Gather(src + (int64_t(c) * count_per_rank + done) * item, int(bytes), MPI_BYTE,
                         rank_ == 0 ? gathered_.data() : nullptr, int(bytes), MPI_BYTE, 0, MPI_COMM_WORLD),
              "reduce_scatter (gather)", rank_);
        if (rank_ != 0) continue;
        char* sum = sums_.data() + size_t(c) * bytes;
        std::memcpy(sum, gathered_.data(), bytes);  // ((x0 + x1) + x2) + ...
        for (int r = 1; r < world_; ++r) add_into(sum, gathered_.data() + size_t(r) * bytes, n, dtype);
      }
      check(MPI_Scatter(rank_ == 0 ? sums_.data() : nullptr, int(bytes), MPI_BYTE, dst + done * item, int(bytes),
                        MPI_BYTE, 0, MPI_COMM_WORLD),
            "reduce_scatter (scatter)", rank_);
    }
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "barrier", rank_); }

 private:
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  bool any_thread_ = false;  // the library gave MPI_THREAD_SERIALIZED (or more)
  std::vector<char> gathered_;
  std::vector<char> sums_;  // reduce_scatter on rank 0: the summed piece of every chunk
};

}  // namespace

bool mpi_compiled_in() { return true; }
std::shared_ptr<Communicator> make_mpi_communicator(const LaunchLayout& layout) {
  return std::make_shared<MpiCommunicator>(layout);
}
void mpi_abort(int code) {
  int ready = 0;
  MPI_Initialized(&ready);
  if (ready) MPI_Abort(MPI_COMM_WORLD, code);
}

#else  // no MPI in this build

bool mpi_compiled_in() { return false; }
std::shared_ptr<Communicator> make_mpi_communicator(const LaunchLayout& layout) {
  throw std::runtime_error("dist: " + layout.describe() +
                           ", but this build has no MPI (CMake did not find it). Install Open MPI "
                           "(Debian: apt-get install libopenmpi-dev openmpi-bin) and rebuild, or launch with torchrun "
                           "(TCP, no MPI needed): see README, Multi-process training");
}
void mpi_abort(int) {}

#endif

}  // namespace rv::train::dist
