// run_dir.h: where a run's files go, and which checkpoint a resumed run starts from.
//
//   <train.out_dir>/<name>/   name = train.run_name when the config or command line sets it; when
//                             it is the default (the config file's name, train/config/resolve.h):
//                             "<config file stem>-<YYYYmmdd-HHMMSS>", so runs never overwrite each other
//     config.json log.jsonl summary.csv tb/ plots/ checkpoints/ model.safetensors
//     eval_resolutions.csv eval_resolutions.json        (docs/formats.md)
//
// --resume (or ckpt.resume):
//   auto     the newest valid checkpoint of the run folder. With the default name the folder
//            is the newest "<stem>-*" one under out_dir that has checkpoints. Nothing found:
//            the run starts fresh (so a preemptible job can always pass --resume auto).
//   a file   that checkpoint; the run folder is the one holding its checkpoints/ folder
//   a folder a run folder: its newest valid checkpoint (an error when it has none)
#pragma once
#include <optional>
#include <string>

#include "train/config/train_config.h"

namespace rv::train {

struct RunPlan {
  std::string dir;                    // the run folder
  std::optional<std::string> resume;  // the checkpoint to continue from
  std::string note;                   // what was decided, for the console ("" when nothing to say)
};

// config_path: the config file given on the command line (its stem names the run);
// named: train.run_name was set by the user (not the default).
RunPlan plan_run(const config::TrainConfig& cfg, const std::string& config_path, const std::string& resume,
                 bool named);

std::string checkpoints_dir(const std::string& run_dir);  // <run>/checkpoints

}  // namespace rv::train
