// nccl_communicator.h: collectives over NCCL for multi-GPU runs, one process per GPU.
//
// Built when CMake finds NCCL next to the CUDA backend (RV_HAVE_NCCL, cmake/Nccl.cmake);
// otherwise make_nccl_communicator throws an error saying how to get it.
//
// Setup: each process uses GPU `local rank` (pick_local_gpu). Rank 0 makes an ncclUniqueId and
// sends its bytes to every rank through the bootstrap communicator, the host one make_communicator
// would use anyway (MPI under mpirun, else the TCP rendezvous on MASTER_ADDR:MASTER_PORT+1 with
// its timeout and its error naming the address); then every rank calls ncclCommInitRank.
//
// Which memory: device_collectives() is true. A pointer into device memory (cudaPointerGetAttributes)
// goes through NCCL; a host pointer (the trainer's metric counts, broadcast_string, barrier)
// goes through the bootstrap communicator, in rank order as before. in and out of one call must
// be on the same side.
//
// Streams: NCCL runs on a communication stream of its own (one per process, non-blocking).
// Each device collective is fenced on both sides against the compute stream (stream.h):
//   compute: ... backward kernels, pack ... [record before_]         [wait after_] unpack, optimizer
//   comm:                                  [wait before_] ncclXxx [record after_]
// so a bucket is complete before it is sent, and nothing on the compute stream (the unpack, the
// optimizer, a new tensor reusing freed memory from the caching allocator) runs before the
// collective has finished with its buffers. The host does not wait: the calls return once queued.
// all_reduce_sum_deferred (GradientSync's overlapped buckets) records only the first fence, so the
// kernels queued after it overlap the reduction; wait_deferred() then adds the second fence for
// everything the comm stream holds (the caller must not touch the buffers on the compute stream
// before). Its buffer is also marked with the caching allocator's record_stream, so that freeing
// it before wait_deferred() (an exception mid-backward) cannot hand the block to a compute-stream
// kernel while NCCL still writes it.
// barrier() waits for the comm stream (polling NCCL's asynchronous error state, so a failed peer
// ends it with an error), then does a host barrier; as every collective, it runs under the
// watchdog (watchdog.h), whose timeout therefore covers every queued NCCL collective there.
//
// Summation order: NCCL does not add in rank order (a ring or tree, chosen by message size and
// topology), so a sum may differ in the last bits from the MPI / TCP communicators and between
// world sizes. What NCCL does guarantee is that every rank receives the same result: AllReduce
// "ends with identical arrays S ... for each rank k" (NCCL user guide, Collective Operations,
// https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/usage/operations.html), and NCCL's
// maintainers confirm the finished sum is sent unchanged to all GPUs, so all ranks hold the same
// bits (https://github.com/NVIDIA/nccl/issues/855). So the ranks' weights never drift apart;
// runs are not bitwise comparable with a CPU run or another world size (the CPU tests to 1e-6 are).
//
// Multi-rank NCCL cannot run on one GPU (NCCL refuses two ranks on one device), so the tests
// here run a world of one (tests/cuda/test_nccl.cpp); the multi-rank path is the same calls.
#pragma once
#include <memory>

#include "train/distributed/communicator.h"

namespace rv::train::dist {

bool nccl_compiled_in();

// The GPU of this process: its local rank. Throws std::runtime_error saying how many GPUs this
// node has when there are fewer than the local ranks (or none).
int pick_local_gpu(const LaunchLayout& layout, int device_count);

// Creates the NCCL communicator of `bootstrap`'s world on GPU `device` (a collective: every rank
// calls it). The result keeps `bootstrap` for the id exchange and the host-memory collectives.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device);

}  // namespace rv::train::dist
