// cmd_train.cpp: `ropevit train CONFIG.json [key=value ...] [--resume auto|PATH] [--print-config]`:
// resolve the config (train/config/resolve.h), decide the run folder and the checkpoint to
// continue from (train/run_dir.h), then hand over to the Trainer (train/trainer.h).
#include <cstdio>
#include <iostream>

#include "train/cli_options.h"
#include "train/commands.h"
#include "train/config/resolve.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace rv {

int cmd_train(int argc, char** argv) {
  std::string path, resume;
  std::vector<std::string> overrides;
  bool print_config = false;
  cli::Options opts("ropevit train", "Train a model from a config: a run folder with the resolved config, logs, "
                                     "TensorBoard events, plots and checkpoints (docs/formats.md).");
  opts.positional("CONFIG.json", "the config file (see configs/)", &path)
      .rest("KEY=VALUE", "overrides, e.g. optim.lr=1e-3 train.epochs=10", &overrides)
      .value("resume", "auto|PATH",
             "continue a run: auto = the newest valid checkpoint of the run folder (a new run if none), or a "
             "checkpoint file or run folder; overrides ckpt.resume",
             &resume)
      .flag("print-config", "print each effective value and where it came from, then train", &print_config)
      .epilog(
          "examples:\n"
          "  ropevit train configs/fmnist_vit_rope_mixed.json\n"
          "  ropevit train configs/fmnist_vit_ape.json train.epochs=1 train.run_name=quick\n"
          "  ropevit train configs/fmnist_vit_ape.json train.run_name=quick --resume auto");
  if (!opts.parse(argc, argv)) return 0;
  const config::ResolvedConfig rc = config::resolve_config(path, overrides);
  if (print_config) std::fputs(config::format_config(rc).c_str(), stdout);
  if (resume.empty()) resume = rc.config.ckpt.resume;
  const auto origin = rc.origin.find("train.run_name");
  const bool named = origin == rc.origin.end() || origin->second != config::kFromFileName;
  const train::RunPlan plan = train::plan_run(rc.config, path, resume, named);
  if (!plan.note.empty()) std::cerr << plan.note << "\n";
  train::Trainer trainer(rc, plan);
  const train::TrainSummary s = trainer.fit();
  std::fprintf(stderr, "done: %lld steps, last loss %.4f, %.1f img/s%s; run folder %s\n", (long long)s.steps,
               s.last_loss, s.img_per_s,
               s.nan_skipped ? (", " + std::to_string(s.nan_skipped) + " steps skipped (NaN)").c_str() : "",
               plan.dir.c_str());
  return 0;
}

}  // namespace rv
