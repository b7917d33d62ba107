// nccl_communicator.cpp: the NCCL communicator, or a clear error in builds without NCCL (see
// nccl_communicator.h for the streams, the id exchange and what NCCL guarantees about sums).
#include "train/distributed/nccl_communicator.h"

#include <stdexcept>
#include <string>

#ifdef RV_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <thread>

#include "cuda/allocator/caching_allocator.h"
#include "cuda/runtime/check.h"
#include "cuda/runtime/stream.h"
#endif

namespace rv::train::dist {

int pick_local_gpu(const LaunchLayout& layout, int device_count) {
  if (layout.local_rank < device_count) return layout.local_rank;
  throw std::runtime_error("dist: " + layout.describe() + " would use GPU " + std::to_string(layout.local_rank) +
                           " (one GPU per local rank: LOCAL_RANK / SLURM_LOCALID / OMPI_COMM_WORLD_LOCAL_RANK), "
                           "but this node has " + std::to_string(device_count) +
                           " GPU(s). Start at most that many processes per node (torchrun --nproc-per-node, "
                           "srun --ntasks-per-node, mpirun --map-by ppr:N:node), or train on the CPU");
}

#ifdef RV_HAVE_NCCL
namespace {

ncclDataType_t nccl_type(DType dtype, const char* op) {
  reduce_item_size(dtype, op);  // throws for a dtype the interface does not reduce
  return dtype == DType::f32 ? ncclFloat32 : dtype == DType::f64 ? ncclFloat64 : ncclInt64;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, int device)
      : boot_(std::move(bootstrap)), device_(device) {
    // This process's GPU becomes its current device for good (one GPU per process).
    RV_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id{};
    if (boot_->rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    boot_->broadcast(&id, int64_t(sizeof id), 0);  // through MPI or the TCP rendezvous
    check(ncclCommInitRank(&comm_, boot_->world_size(), id, boot_->rank()), "ncclCommInitRank");
    RV_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RV_CUDA_CHECK(cudaEventCreateWithFlags(&before_, cudaEventDisableTiming));
    RV_CUDA_CHECK(cudaEventCreateWithFlags(&after_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    // No throwing here: a failed peer makes wait_stream abort the communicator (comm_ = null).
    try {
      wait_stream();
    } catch (...) {
    }
    if (comm_) ncclCommDestroy(comm_);
    cudaEventDestroy(after_);
    cudaEventDestroy(before_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return boot_->rank(); }
  int world_size() const override { return boot_->world_size(); }
  int local_rank() const override { return boot_->local_rank(); }
  std::string name() const override { return "nccl on cuda:" + std::to_string(device_) + " (bootstrap " + boot_->name() + ")"; }
  bool device_collectives() const override { return true; }

  void all_reduce_sum(void* data, int64_t count, DType dtype) override {
    if (!on_device(data, data, "all_reduce")) return boot_->all_reduce_sum(data, count, dtype);
    const ncclDataType_t t = nccl_type(dtype, "all_reduce");
    fenced([&] { return ncclAllReduce(data, data, size_t(count), t, ncclSum, comm_, stream_); }, "ncclAllReduce");
  }
  // The first half of fenced(): the compute stream does not wait until wait_deferred(), so the
  // backward's remaining kernels overlap the reduction (GradientSync with dist.overlap).
  void all_reduce_sum_deferred(void* data, int64_t count, DType dtype) override {
    if (!on_device(data, data, "all_reduce")) return boot_->all_reduce_sum(data, count, dtype);
    const ncclDataType_t t = nccl_type(dtype, "all_reduce");
    cudaStream_t compute = rv::cuda::compute_stream(device_);
    RV_CUDA_CHECK(cudaEventRecord(before_, compute));
    RV_CUDA_CHECK(cudaStreamWaitEvent(stream_, before_, 0));
    check(ncclAllReduce(data, data, size_t(count), t, ncclSum, comm_, stream_), "ncclAllReduce");
    // Until wait_deferred() nothing orders the compute stream after this collective, so a bucket
    // freed in between (a GradientSync torn down by an exception mid-backward) must not be handed
    // to a kernel on the compute stream before NCCL is done with it. (fenced() calls need no such
    // note: the compute stream waits for them at once.)
    rv::cuda::device_allocator(device_).record_stream(data, stream_);
  }
  void wait_deferred() override {  // the second half: compute waits for all that stream_ holds
    RV_CUDA_CHECK(cudaEventRecord(after_, stream_));
    RV_CUDA_CHECK(cudaStreamWaitEvent(rv::cuda::compute_stream(device_), after_, 0));
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    if (!on_device(data, data, "broadcast")) return boot_->broadcast(data, bytes, root);
    if (root < 0 || root >= world_size())
      throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of " +
                                  std::to_string(world_size()));
    fenced([&] { return ncclBroadcast(data, data, size_t(bytes), ncclUint8, root, comm_, stream_); }, "ncclBroadcast");
  }
  void all_gather(const void* in, int64_t bytes, void* out) override {
    if (!on_device(in, out, "all_gather")) return boot_->all_gather(in, bytes, out);
    fenced([&] { return ncclAllGather(in, out, size_t(bytes), ncclUint8, comm_, stream_); }, "ncclAllGather");
  }
  void reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) override {
    if (!on_device(in, out, "reduce_scatter")) return boot_->reduce_scatter_sum(in, out, count_per_rank, dtype);
    const ncclDataType_t t = nccl_type(dtype, "reduce_scatter");
    fenced([&] { return ncclReduceScatter(in, out, size_t(count_per_rank), t, ncclSum, comm_, stream_); },
           "ncclReduceScatter");
  }
  void barrier() override {
    wait_stream();     // every queued NCCL collective has finished (or failed: thrown)
    boot_->barrier();  // and every rank got here
  }

 private:
  void check(ncclResult_t r, const char* call) const {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const char* last = ncclGetLastError(comm_);
    throw std::runtime_error("dist (nccl): rank " + std::to_string(boot_->rank()) + ": " + call + " failed: " +
                             ncclGetErrorString(r) + (last && *last ? std::string(" (") + last + ")" : "") +
                             (r == ncclRemoteError || r == ncclSystemError ? "; a peer process may have ended" : ""));
  }

  // True when both pointers are device memory (or managed), false when both are host memory.
  bool on_device(const void* a, const void* b, const char* op) const {
    const bool da = is_device_pointer(a), db = is_device_pointer(b);
    if (da != db)
      throw std::invalid_argument(std::string(op) + " (nccl): one buffer is in device memory and the other in host "
                                  "memory; expected both on the same side");
    return da;
  }
  static bool is_device_pointer(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error of an unknown pointer: it is host memory
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }

  // Queues `enqueue` (an NCCL call on stream_) between the two fences of the header's diagram.
  template <class F> void fenced(F&& enqueue, const char* call) {
    cudaStream_t compute = rv::cuda::compute_stream(device_);
    RV_CUDA_CHECK(cudaEventRecord(before_, compute));
    RV_CUDA_CHECK(cudaStreamWaitEvent(stream_, before_, 0));
    check(enqueue(), call);
    RV_CUDA_CHECK(cudaEventRecord(after_, stream_));
    RV_CUDA_CHECK(cudaStreamWaitEvent(compute, after_, 0));
  }

  // Waits for stream_ without blocking in the driver, so NCCL's asynchronous errors (a peer
  // gone) end the wait with an error; the watchdog bounds the time.
  void wait_stream() {
    RV_CUDA_CHECK(cudaEventRecord(after_, stream_));
    for (;;) {
      const cudaError_t e = cudaEventQuery(after_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) RV_CUDA_CHECK(e);
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(comm_);  // the queued collectives cannot finish; free the stream
        comm_ = nullptr;
        throw std::runtime_error("dist (nccl): rank " + std::to_string(boot_->rank()) +
                                 ": a collective failed: " + ncclGetErrorString(async) +
                                 "; a peer process may have ended");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  std::shared_ptr<Communicator> boot_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t before_ = nullptr, after_ = nullptr;
};

}  // namespace

bool nccl_compiled_in() { return true; }
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device) {
  return std::make_shared<NcclCommunicator>(std::move(bootstrap), device);
}

#else  // no NCCL in this build

bool nccl_compiled_in() { return false; }
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> bootstrap, int) {
  throw std::runtime_error("dist: " + std::to_string(bootstrap->world_size()) +
                           " processes on GPUs need NCCL, which this build does not have (CMake did not find it, or "
                           "the CUDA backend is off). Install NCCL (or pip install nvidia-nccl-cu12) and rebuild with "
                           "-DROPEVIT_CUDA=ON; the configure step prints whether NCCL is in");
}

#endif

}  // namespace rv::train::dist
