// resolve.h: from a config file and command-line overrides to the config a run uses.
//
//   defaults (TrainConfig's initialisers)
//     <- the file's includes, bases first (train/config/config_file.h)
//     <- the file itself
//     <- key=value overrides (train/config/overrides.h)
//   -> checked against the schema (train/config/schema.h): unknown keys, types, ranges, and the
//      rules that tie keys together (sched.warmup_epochs <= train.epochs, ...)
//   -> TrainConfig, the complete JSON (every key; a run folder saves it, and it resolves to the
//      same config when given back as a file), and where each value came from.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/config/train_config.h"

namespace rv::config {

inline constexpr const char* kFromFileName = "default (the config file's name)";

struct ResolvedConfig {
  TrainConfig config;
  nlohmann::json json;                        // every key, effective values; comments dropped
  std::map<std::string, std::string> origin;  // dotted key -> "default", a file path or "command line"
  std::vector<std::string> files;             // files read, bases first
};

// Throws std::invalid_argument (ConfigError for checks, listing every problem) naming the file
// or "command line" and the dotted key at fault.
ResolvedConfig resolve_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The --print-config table: one line per key, grouped, with its value and where it came from.
std::string format_config(const ResolvedConfig& rc);
// The --keys reference: every key with its type, allowed values, default and help.
std::string format_keys();

}  // namespace rv::config
