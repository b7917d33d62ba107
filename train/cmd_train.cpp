// cmd_train.cpp: `ropevit train CONFIG.json [key=value ...] [--resume auto|PATH] [--print-config]`:
// resolve the config (train/config/resolve.h), decide the run folder and the checkpoint to
// continue from (train/run_dir.h), then hand over to the Trainer (train/trainer.h), or for
// task = segmentation to the SegTrainer (train/seg/seg_trainer.h).
// Under torchrun / mpirun / srun every process runs this; the communicator comes from the
// launch environment (train/distributed/), and rank 0 decides the run folder for all.
#include <cstdio>
#include <iostream>

#include "engine/backend.h"
#include "train/cli_options.h"
#include "train/commands.h"
#include "train/config/resolve.h"
#include "train/distributed/communicator.h"
#include "train/distributed/mpi_communicator.h"
#include "train/run_dir.h"
#include "train/seg/seg_trainer.h"
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
          "  ropevit train configs/fmnist_vit_ape.json train.run_name=quick --resume auto\n"
          "  ropevit train configs/scenes_upernet_vit_tiny_rope_mixed.json data.root=scenes/ADEChallengeData2016");
  if (!opts.parse(argc, argv)) return 0;
  const config::ResolvedConfig rc = config::resolve_config(path, overrides);
  // GPUs (train.device = cuda, or auto on a machine that has one) bring NCCL (dist.backend = auto);
  // segmentation trains on the CPU only for now (train/seg/).
  const std::string& dev = rc.config.train.device;
  const bool on_gpu = rc.config.task != "segmentation" &&
                      (dev == "cuda" || (dev == "auto" && backend::device_count(DeviceType::cuda) > 0));
  const std::shared_ptr<train::dist::Communicator> comm = train::dist::make_communicator(rc.config.dist, on_gpu);
  const bool lead = comm->rank() == 0;
  if (print_config && lead) std::fputs(config::format_config(rc).c_str(), stdout);
  if (resume.empty()) resume = rc.config.ckpt.resume;
  const auto origin = rc.origin.find("train.run_name");
  const bool named = origin == rc.origin.end() || origin->second != config::kFromFileName;
  train::RunPlan plan;
  train::TrainSummary s;
  try {
    // Rank 0 plans (a timestamped folder name, --resume auto's search) and tells the others.
    std::string error;
    if (lead) try {
        plan = train::plan_run(rc.config, path, resume, named);
      } catch (const std::exception& e) {
        error = e.what();
      }
    error = train::dist::broadcast_string(*comm, error);
    if (!error.empty()) throw std::runtime_error(error);
    plan.dir = train::dist::broadcast_string(*comm, plan.dir);
    const std::string from = train::dist::broadcast_string(*comm, plan.resume.value_or(""));
    plan.resume = from.empty() ? std::nullopt : std::optional<std::string>(from);
    if (lead && !plan.note.empty()) std::cerr << plan.note << "\n";
    if (rc.config.task == "segmentation") {  // UperNet, counted in iterations (train/seg/)
      train::seg::SegTrainer trainer(rc, plan, comm);
      s = trainer.fit();
    } else {
      train::Trainer trainer(rc, plan, comm);
      s = trainer.fit();
    }
  } catch (const std::exception& e) {
    if (comm->world_size() == 1) throw;
    // One rank failing must end them all: print this rank's reason, then under MPI abort the job
    // (its peers may be blocked in a collective); over TCP the closed sockets tell the peers.
    std::fprintf(stderr, "ropevit train: rank %d of %d: error: %s\n", comm->rank(), comm->world_size(), e.what());
    std::fflush(stderr);
    if (comm->name().find("mpi") != std::string::npos) train::dist::mpi_abort(1);  // "mpi", "nccl ... (bootstrap mpi)"
    return 1;
  }
  if (!lead) return 0;
  std::fprintf(stderr, "done: %lld steps, last loss %.4f, %.1f img/s%s; run folder %s\n", (long long)s.steps,
               s.last_loss, s.img_per_s,
               s.nan_skipped ? (", " + std::to_string(s.nan_skipped) + " steps skipped (NaN)").c_str() : "",
               plan.dir.c_str());
  return 0;
}

}  // namespace rv
