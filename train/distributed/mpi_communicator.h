// mpi_communicator.h: collectives over MPI (Open MPI) for CPU runs launched by mpirun.
//
// Compiled in when CMake finds MPI (RV_HAVE_MPI; Debian: libopenmpi-dev); otherwise
// make_mpi_communicator throws an error saying how to get it, and only a launch that needs MPI
// (mpirun with more than one process) ever calls it.
//
// all_reduce is a gather to rank 0, a sum in rank order there, and a broadcast of the result:
// MPI_Allreduce does not promise an order of summation, and we want the same bits as the TCP
// communicator and as any timing. It moves more data than a ring; for the GPU, NCCL will do
// the reduction (the CUDA backend), so this favours exactness over bandwidth.
// reduce_scatter likewise: MPI_Reduce_scatter_block does not promise an order either, so for
// each destination chunk c, rank 0 gathers every rank's chunk c and adds them in rank order, and
// one MPI_Scatter hands each rank its sums (W gathers and a scatter per piece; rank 0 holds two
// pieces of W chunks, at most 1 GiB each).
// Buffers above 1 GiB go in pieces (MPI counts are int).
//
// MPI_COMM_WORLD is set to return errors (MPI_ERRORS_RETURN), which become std::runtime_error
// naming the collective; abort() ends every rank (MPI_Abort), as a failing rank must.
#pragma once
#include <memory>

#include "train/distributed/communicator.h"

namespace rv::train::dist {

bool mpi_compiled_in();
// Initializes MPI (once per process) and returns a communicator over MPI_COMM_WORLD. Throws
// std::runtime_error when this build has no MPI, or when MPI's world disagrees with `layout`.
std::shared_ptr<Communicator> make_mpi_communicator(const LaunchLayout& layout);
// Ends every rank of the MPI job with `code` (MPI_Abort); returns only without MPI.
void mpi_abort(int code);

}  // namespace rv::train::dist
