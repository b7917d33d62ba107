// commands.cpp: the subcommand table.
#include "train/commands.h"

namespace rv {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "print the build: compiler, threads, BLAS, devices", cmd_info},
      {"bench", "time ops on real model shapes against reference libraries", cmd_bench},
      {"config", "resolve a training config (includes, overrides, checks) and print it", cmd_config},
  };
  return table;
}

}  // namespace rv
