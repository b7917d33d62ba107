// checkpoint.h: training checkpoints: one safetensors file holding everything a run needs to
// continue exactly where it stopped.
//
//   tensors   <timm name>              the model's state dict (loads into timm as is, after
//                                      dropping the prefixed entries below)
//             ema.<timm name>          the EMA weights (train.ema_decay > 0)
//             optimizer.<key>          Optimizer::state_dict(): moments, step counts, hypers
//   metadata  "ropevit_checkpoint":    JSON (CheckpointMeta): epoch and loader position, step,
//                                      generator offsets, best metric, the resolved config
//
// Files go through save_safetensors, i.e. AtomicFileWriter (temp file, fsync, rename, fsync of
// the folder): a crash while writing leaves the previous file intact, never a torn one.
//
// The run folder's checkpoints/ holds
//   last.safetensors          end of the latest epoch
//   best.safetensors          the epoch with the best ckpt.best_metric
//   epoch_0005.safetensors    every ckpt.every_epochs epochs (the newest ckpt.keep kept)
//   recovery.safetensors      every ckpt.recovery_steps steps, mid-epoch (overwritten)
// and `--resume auto` takes the valid one with the most steps (find_latest_checkpoint).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/nn/state_dict.h"
#include "engine/optim/optimizer.h"
#include "models/model.h"

namespace rv::train {

inline constexpr const char* kCheckpointMetaKey = "ropevit_checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

struct CheckpointMeta {
  std::string kind = "last";      // last | best | epoch | recovery
  std::string model;              // model.name, for messages
  int64_t epoch = 0;              // the epoch to continue in
  int64_t epoch_batches = 0;      // micro-batches of that epoch already trained on, per rank
  int64_t epoch_samples = -1;     // the same position as samples of all ranks together (world-size
                                  // independent; -1 in files from before it: epoch_batches x batch_size)
  int64_t world_size = 1;         // ranks of the run that wrote it (for messages)
  int64_t step = 0;               // optimizer steps done (the LR schedule's position)
  uint64_t seed = 0;              // train.seed (data order, augmentation, mixup, dropout)
  uint64_t dropout_offset = 0;    // the dropout / drop-path Generator's offset
  double best_metric = 0.0;       // best ckpt.best_metric so far (valid when best_epoch >= 0)
  int64_t best_epoch = -1;
  int64_t nan_skipped = 0;        // steps skipped for a NaN / Inf loss (train.nan_policy = skip)
  double epoch_loss_sum = 0.0;    // this epoch's summed step losses so far (its summary.csv mean)
  int64_t epoch_loss_steps = 0;
  nlohmann::json config;          // the resolved config of the run
};

nlohmann::json meta_to_json(const CheckpointMeta& m);
// Throws std::runtime_error naming `where` and the missing / mistyped field.
CheckpointMeta meta_from_json(const nlohmann::json& j, const std::string& where);

// Writes model (+ EMA, + optimizer state) and meta to `path` atomically.
void save_checkpoint(const std::string& path, const nn::Module& model, const nn::Module* ema,
                     const optim::Optimizer* optimizer, const CheckpointMeta& meta);

struct LoadedCheckpoint {
  std::string path;
  CheckpointMeta meta;
  nn::StateDict model, ema, optimizer;  // prefixes removed; ema / optimizer may be empty
};

// Opens and checks a checkpoint file: a valid safetensors file (a truncated or corrupt one
// fails here, naming what is wrong) with ropevit's metadata entry. Throws std::runtime_error.
LoadedCheckpoint read_checkpoint(const std::string& path);

// The names / shapes / dtypes of `state` against `model`'s state dict: "" when they match, else
// a report of every difference (missing, unexpected, shape), at most `max_lines` lines.
std::string state_mismatch(const nn::StateDict& state, const nn::Module& model, size_t max_lines = 12);

// Loads model weights, and the EMA weights and optimizer state when given (both must then be in
// the file). Everything is checked before anything changes; a mismatch throws naming the file,
// the model in the file and ours, and the differing names and shapes.
void restore_checkpoint(const LoadedCheckpoint& ckpt, models::Model& model, models::Model* ema,
                        optim::Optimizer* optimizer);

// The valid checkpoint in `dir` (a checkpoints/ folder) with the most steps (ties: the one
// written last). Files that fail read_checkpoint are skipped, each with its reason added to
// `skipped` when given. nullopt when there is none.
std::optional<std::string> find_latest_checkpoint(const std::string& dir, std::vector<std::string>* skipped = nullptr);

// Writes the model (or, with ema, the EMA) weights of a checkpoint alone, timm names, to `out`.
void export_weights(const std::string& checkpoint_path, const std::string& out, bool ema);

}  // namespace rv::train
