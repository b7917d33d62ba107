// cmd_info.cpp: `ropevit info` prints what this build has, so a bug report can say it;
// `ropevit info MODEL` and `ropevit info --models` are in info_model.cpp.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/cpu/parallel.h"
#include "engine/runtime_info.h"
#include "train/commands.h"

namespace rv {

int cmd_info(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--models") {
    if (argc > 2) throw std::invalid_argument("--models takes no other argument");
    return info_models(argc, argv);
  }
  if (argc >= 2) return info_model(argc, argv);
  std::printf("ropevit\n");
  std::printf("  compiler   %s\n", __VERSION__);
  std::printf("  threads    %d (OpenMP %s)\n", cpu::num_threads(), runtime_has_openmp() ? "on" : "off");
  std::printf("  blas       %s\n", runtime_blas_name());
  std::printf("  devices    cpu\n");
  return 0;
}

}  // namespace rv
