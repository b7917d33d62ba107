// commands.h: the table of `ropevit` subcommands. Adding a command = one entry in
// commands.cpp plus the file that implements it.
#pragma once
#include <vector>

namespace rv {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

const std::vector<Command>& commands();

int cmd_info(int argc, char** argv);
int info_model(int argc, char** argv);   // ropevit info MODEL ...  (info_model.cpp)
int info_models(int argc, char** argv);  // ropevit info --models
int cmd_bench(int argc, char** argv);
int cmd_config(int argc, char** argv);
int cmd_train(int argc, char** argv);   // cmd_train.cpp
int cmd_eval(int argc, char** argv);    // cmd_eval.cpp
int cmd_export(int argc, char** argv);  // cmd_export.cpp
int cmd_convert(int argc, char** argv);
int cmd_make_scenes(int argc, char** argv);

}  // namespace rv
