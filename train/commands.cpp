// commands.cpp: the subcommand table.
#include "train/commands.h"

namespace rv {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "the build (compiler, threads, BLAS); a model's params, GMACs, memory", cmd_info},
      {"bench", "time ops or a whole model (against reference libraries and PyTorch), or the input pipeline", cmd_bench},
      {"config", "resolve a training config (includes, overrides, checks) and print it", cmd_config},
  };
  return table;
}

}  // namespace rv
