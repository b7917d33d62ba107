// cmd_info.cpp: `ropevit info` prints what this build has, so a bug report can say it.
#include <cstdio>

#include "engine/cpu/parallel.h"
#include "engine/runtime_info.h"
#include "train/commands.h"

namespace rv {

int cmd_info(int argc, char** argv) {
  std::printf("ropevit\n");
  std::printf("  compiler   %s\n", __VERSION__);
  std::printf("  threads    %d (OpenMP %s)\n", cpu::num_threads(), runtime_has_openmp() ? "on" : "off");
  std::printf("  blas       %s\n", runtime_blas_name());
  std::printf("  devices    cpu\n");
  return 0;
}

}  // namespace rv
