// overrides.h: `key.sub=value` arguments from the command line, applied on top of a config.
//
//   optim.lr=1e-3            -> 0.001 (a number)
//   eval.img_sizes=[128,224] -> a list          train.amp=off      -> "off" (not JSON: a string)
//   model.img_size=null      -> unset           data.root=/data/in -> "/data/in"
//
// The value is parsed as JSON when it parses, and taken as a plain string otherwise. For a key
// whose schema type is a string, a value that parsed as a number or boolean is kept as its text
// (train.run_name=2024 is the string "2024"), since a shell makes quoting JSON strings painful.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/config/schema.h"
#include "train/config/sourced_json.h"

namespace rv::config {

struct Override {
  std::string key;      // dotted
  nlohmann::json value;
  std::string text;     // the value as typed
};

// Splits "key.sub=value"; throws std::invalid_argument for a missing '=' or a malformed key.
Override parse_override(const std::string& arg);

// Applies overrides in order (a later one wins), marking them "command line". Unknown keys are
// left for Schema::check to report with suggestions, like unknown keys in files.
void apply_overrides(SourcedJson& tree, const std::vector<Override>& overrides, const Schema& schema);

}  // namespace rv::config
