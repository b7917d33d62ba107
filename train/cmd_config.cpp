// cmd_config.cpp: `ropevit config CONFIG.json [key=value ...]` resolves a config exactly as
// `ropevit train` will (includes, overrides, every check) and prints it: the complete JSON by
// default (a file that resolves to the same config), the table of values and where each came
// from with --print-config, or the reference of every key with --keys.
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "train/cli_options.h"
#include "train/commands.h"
#include "train/config/resolve.h"

namespace rv {

int cmd_config(int argc, char** argv) {
  std::string path, out_path;
  std::vector<std::string> overrides;
  bool print_config = false, keys = false, model = false;
  cli::Options opts("ropevit config", "Resolve a training config (includes, then key=value overrides), check every key, "
                                      "and print it.");
  opts.positional("CONFIG.json", "the config file (see configs/)", &path, /*required=*/false)
      .rest("KEY=VALUE", "overrides, e.g. optim.lr=1e-3 eval.img_sizes=[128,224] (JSON, else a string)", &overrides)
      .flag("print-config", "print each effective value and where it came from (default, a file, command line)",
            &print_config)
      .flag("keys", "list every config key: type, allowed values, default, help (no CONFIG needed)", &keys)
      .flag("model", "also build the model config from the registry and print it (checks model.* overrides)", &model)
      .value("out", "FILE", "also write the resolved config as JSON to FILE", &out_path)
      .epilog(
          "examples:\n"
          "  ropevit config configs/fmnist_vit_rope_mixed.json --print-config\n"
          "  ropevit config configs/deit3_vit_s_rope_mixed.json train.batch_size=64 optim.lr=2e-3\n"
          "  ropevit config --keys");
  if (!opts.parse(argc, argv)) return 0;
  if (keys) {
    std::fputs(config::format_keys().c_str(), stdout);
    if (path.empty()) return 0;
  }
  if (path.empty()) throw cli::UsageError("missing CONFIG.json (see `ropevit config --help`)");

  config::ResolvedConfig rc = config::resolve_config(path, overrides);
  if (print_config) std::fputs(config::format_config(rc).c_str(), stdout);
  if (model) std::printf("\n# model %s\n%s", rc.config.model.name.c_str(),
                         models::to_string(rc.config.model_config()).c_str());
  if (!print_config && !model) std::printf("%s\n", rc.json.dump(2).c_str());
  if (!out_path.empty()) {
    std::ofstream out(out_path);
    out << rc.json.dump(2) << "\n";
    if (!out) throw std::runtime_error("--out: cannot write '" + out_path + "'");
  }
  return 0;
}

}  // namespace rv
