// launch_env.h: which process this is in a multi-process launch, read from the environment
// variables the launchers set (docs: README "Multi-process training", ../shared/ux/anchors.md).
//
//   launcher   rank             world size         local rank          rendezvous host
//   torchrun   RANK             WORLD_SIZE         LOCAL_RANK          MASTER_ADDR (MASTER_PORT)
//   mpirun     OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK              (MPI itself)
//   srun       SLURM_PROCID     SLURM_NTASKS       SLURM_LOCALID       first host of SLURM_JOB_NODELIST
//
// Precedence: torchrun's variables, then Open MPI's (mpirun inside a Slurm allocation also
// has SLURM_* set, but those describe the allocation, not this process), then Slurm's. No
// variables: one process (rank 0 of 1).
//
// The TCP rendezvous (tcp_communicator.h) listens on MASTER_PORT + 1: under torchrun the agent's
// own store already holds MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE), so we never bind it.
#pragma once
#include <map>
#include <string>

namespace rv::train::dist {

enum class Launcher { none, torchrun, openmpi, slurm };
const char* launcher_name(Launcher l);

struct LaunchLayout {
  Launcher launcher = Launcher::none;
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";  // the host of rank 0 (TCP rendezvous)
  int master_port = 29500;                // MASTER_PORT; we listen on master_port + 1
  std::string describe() const;           // e.g. "rank 1 of 2 (local 1 of 2), launched by torchrun"
};

// `env` maps variable names to values (tests pass their own); read_launch_layout() reads the
// process environment. Throws std::invalid_argument naming the variable on a malformed value
// (not an integer, rank outside 0..world-1, a partial torchrun set).
LaunchLayout read_launch_layout(const std::map<std::string, std::string>& env);
LaunchLayout read_launch_layout();

// The first host of a Slurm node list: "node[01-04,07],gpu5" -> "node01"; "a,b" -> "a".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace rv::train::dist
