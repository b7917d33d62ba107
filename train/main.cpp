// main.cpp: the `ropevit` program. Each subcommand lives in its own file under train/;
// this file only routes argv[1] to it and turns any error into a message and exit code 1.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "train/cli_options.h"
#include "train/commands.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ropevit <command> [options]\n"
               "\n"
               "commands:\n");
  for (const auto& c : rv::commands()) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\nRun `ropevit <command> --help` for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : rv::commands()) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const rv::cli::UsageError& e) {  // a wrong argument: exit 2, as argparse does
      std::fprintf(stderr, "ropevit %s: error: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ropevit %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "ropevit: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
