// launch_env.cpp: reading the launch layout from torchrun / Open MPI / Slurm variables (see launch_env.h).
#include "train/distributed/launch_env.h"

#include <cstdlib>
#include <stdexcept>

extern char** environ;

namespace rv::train::dist {
namespace {

using Env = std::map<std::string, std::string>;

const std::string* find(const Env& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int integer(const Env& env, const std::string& name, int fallback) {
  const std::string* v = find(env, name);
  if (!v) return fallback;
  size_t used = 0;
  long k = -1;
  try {
    k = std::stol(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || k < 0 || k > (1 << 24))
    throw std::invalid_argument("launch environment: " + name + "='" + *v + "' is not a non-negative integer");
  return int(k);
}

}  // namespace

const char* launcher_name(Launcher l) {
  switch (l) {
    case Launcher::torchrun: return "torchrun";
    case Launcher::openmpi: return "mpirun (Open MPI)";
    case Launcher::slurm: return "srun (Slurm)";
    default: return "none";
  }
}

std::string LaunchLayout::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " +
         std::to_string(local_rank) + " of " + std::to_string(local_world_size) + "), launched by " +
         launcher_name(launcher);
}

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at the first comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == ',' && depth == 0) break;
    depth += c == '[' ? 1 : c == ']' ? -1 : 0;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  // "node[01-04,07]": the prefix and the first number of the range, keeping its zero padding.
  std::string inner = first.substr(open + 1);
  size_t end = inner.find_first_of(",-]");
  return first.substr(0, open) + inner.substr(0, end);
}

LaunchLayout read_launch_layout(const Env& env) {
  LaunchLayout l;
  auto check = [&](const char* what) {
    if (l.world_size < 1 || l.rank >= l.world_size)
      throw std::invalid_argument(std::string("launch environment (") + what + "): rank " + std::to_string(l.rank) +
                                  " is not in 0.." + std::to_string(l.world_size - 1));
    if (l.local_world_size < 1) l.local_world_size = 1;
    return l;
  };
  l.master_addr = find(env, "MASTER_ADDR") ? *find(env, "MASTER_ADDR") : "127.0.0.1";
  l.master_port = integer(env, "MASTER_PORT", 29500);
  if (find(env, "RANK") || find(env, "WORLD_SIZE")) {
    if (!find(env, "RANK") || !find(env, "WORLD_SIZE"))
      throw std::invalid_argument("launch environment: RANK and WORLD_SIZE must be set together (torchrun sets both)");
    l.launcher = Launcher::torchrun;
    l.rank = integer(env, "RANK", 0);
    l.world_size = integer(env, "WORLD_SIZE", 1);
    l.local_rank = integer(env, "LOCAL_RANK", l.rank);
    l.local_world_size = integer(env, "LOCAL_WORLD_SIZE", l.world_size);
    return check("RANK / WORLD_SIZE");
  }
  if (find(env, "OMPI_COMM_WORLD_SIZE")) {
    l.launcher = Launcher::openmpi;
    l.rank = integer(env, "OMPI_COMM_WORLD_RANK", 0);
    l.world_size = integer(env, "OMPI_COMM_WORLD_SIZE", 1);
    l.local_rank = integer(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    l.local_world_size = integer(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    return check("OMPI_COMM_WORLD_RANK / _SIZE");
  }
  if (find(env, "SLURM_PROCID") && find(env, "SLURM_NTASKS")) {
    l.launcher = Launcher::slurm;
    l.rank = integer(env, "SLURM_PROCID", 0);
    l.world_size = integer(env, "SLURM_NTASKS", 1);
    l.local_rank = integer(env, "SLURM_LOCALID", 0);
    // SLURM_NTASKS_PER_NODE may read "2(x3)": its leading number is the count on this node.
    if (const std::string* v = find(env, "SLURM_NTASKS_PER_NODE")) l.local_world_size = std::atoi(v->c_str());
    if (!find(env, "MASTER_ADDR") && find(env, "SLURM_JOB_NODELIST"))
      l.master_addr = first_slurm_host(*find(env, "SLURM_JOB_NODELIST"));
    return check("SLURM_PROCID / SLURM_NTASKS");
  }
  return l;
}

LaunchLayout read_launch_layout() {
  Env env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return read_launch_layout(env);
}

}  // namespace rv::train::dist
