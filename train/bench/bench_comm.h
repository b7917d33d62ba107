// bench_comm.h: `ropevit bench comm`, all-reduce time and bandwidth per message size across the
// processes of a launch (mpirun / torchrun / srun), with the communicator training uses.
#pragma once

namespace rv::bench {

int bench_comm(int argc, char** argv);

}  // namespace rv::bench
