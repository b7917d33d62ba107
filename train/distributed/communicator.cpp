// communicator.cpp: the single-process communicator, the summation helper, and the choice of
// communicator for a launch (see communicator.h).
#include "train/distributed/communicator.h"

#include <cstring>
#include <stdexcept>

#include "engine/backend.h"
#include "train/distributed/mpi_communicator.h"
#include "train/distributed/nccl_communicator.h"
#include "train/distributed/tcp_communicator.h"
#include "train/distributed/watchdog.h"

namespace rv::train::dist {

void LocalCommunicator::all_gather(const void* in, int64_t bytes, void* out) {
  if (bytes > 0 && in != out) std::memmove(out, in, size_t(bytes));
}

void LocalCommunicator::reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) {
  const int64_t bytes = count_per_rank * int64_t(reduce_item_size(dtype, "reduce_scatter"));
  if (bytes > 0 && in != out) std::memmove(out, in, size_t(bytes));  // one rank: its own chunk is the sum
}

size_t reduce_item_size(DType dtype, const char* op) {
  if (dtype == DType::f32 || dtype == DType::f64 || dtype == DType::i64) return dtype_size(dtype);
  throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(dtype) + " is not reducible here; expected "
                              "float32, float64 or int64");
}

namespace {
template <class T> void add_typed(void* dst, const void* src, int64_t n) {
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];  // one pass, vectorised; order across ranks fixed by the caller
}
}  // namespace

void add_into(void* dst, const void* src, int64_t count, DType dtype) {
  switch (dtype) {
    case DType::f32: return add_typed<float>(dst, src, count);
    case DType::f64: return add_typed<double>(dst, src, count);
    case DType::i64: return add_typed<int64_t>(dst, src, count);
    default: reduce_item_size(dtype, "all_reduce");  // throws
  }
}

std::shared_ptr<Communicator> make_communicator(const config::DistSection& cfg, const LaunchLayout& layout,
                                                bool on_gpu) {
  if (layout.world_size == 1) return std::make_shared<LocalCommunicator>();
  const std::string launch = layout.describe();
  if (cfg.backend == "none")
    throw std::runtime_error("dist.backend = none, but this process is " + launch +
                             ": use dist.backend = auto (or launch a single process)");
  if (cfg.backend == "nccl" && !on_gpu)
    throw std::runtime_error("dist.backend = nccl: NCCL moves GPU memory, but this run trains on the CPU "
                             "(train.device); CPU runs use auto (MPI under mpirun, TCP under torchrun / srun)");
  if (cfg.backend == "nccl" && !nccl_compiled_in())
    throw std::runtime_error("dist.backend = nccl: this build has no NCCL (it needs the CUDA backend and CMake must "
                             "find NCCL; the configure step says whether it did); use dist.backend = auto (gradients "
                             "then go through the host, slowly)");
  const bool nccl = on_gpu && nccl_compiled_in() && (cfg.backend == "nccl" || cfg.backend == "auto");
  // Before any rendezvous: a node with fewer GPUs than processes fails here, on every rank.
  const int gpu = nccl ? pick_local_gpu(layout, backend::device_count(DeviceType::cuda)) : -1;
  std::shared_ptr<Communicator> inner;
  if (cfg.backend == "mpi" || layout.launcher == Launcher::openmpi) {
    if (layout.launcher != Launcher::openmpi && cfg.backend == "mpi")
      throw std::runtime_error("dist.backend = mpi, but this process is " + launch +
                               ": launch it with mpirun, or use dist.backend = auto (TCP)");
    inner = make_mpi_communicator(layout);  // throws with the fix when MPI is not compiled in
  } else {
    inner = std::make_shared<TcpCommunicator>(layout, cfg.timeout_s);
  }
  // NCCL's unique id travels through the host communicator, which also keeps serving host memory.
  if (nccl) inner = make_nccl_communicator(std::move(inner), gpu);
  return std::make_shared<WatchedCommunicator>(std::move(inner), cfg.timeout_s);
}

std::shared_ptr<Communicator> make_communicator(const config::DistSection& cfg, bool on_gpu) {
  return make_communicator(cfg, read_launch_layout(), on_gpu);
}

std::string broadcast_string(Communicator& comm, const std::string& s, int root) {
  int64_t n = int64_t(s.size());
  comm.broadcast(&n, sizeof n, root);
  std::string out = comm.rank() == root ? s : std::string(size_t(n), '\0');
  comm.broadcast(out.data(), n, root);
  return out;
}

}  // namespace rv::train::dist
