// config_file.h: reading one JSON config file and the chain of files it includes.
//
//   {"include": "base.json", "optim": {"lr": 1e-3}}      // or "include": ["a.json", "b.json"]
//
// An include names files relative to the including file. They are loaded first (in order, each
// with its own includes, to any depth), merged key by key, and the including file's own keys
// merged on top (train/config/sourced_json.h has the rules). Every value remembers the file it
// came from. Keys starting with "_" ("_comment") are comments: kept, never checked.
//
// Errors (std::invalid_argument) name the file: a missing or unreadable file (and the file that
// included it), JSON that does not parse (file:line:column and what the parser expected), a
// duplicate key, a top level that is not an object, a bad "include" value, and an include cycle
// (the whole chain: a.json -> b.json -> a.json).
#pragma once
#include <string>
#include <vector>

#include "train/config/sourced_json.h"

namespace rv::config {

struct LoadedConfig {
  SourcedJson tree;                // every file merged; "include" keys removed
  std::vector<std::string> files;  // the files read, in merge order (bases first, the named file last)
};

LoadedConfig load_config_file(const std::string& path);

// Parses JSON text as a config file does (duplicate keys refused, line:column in the error);
// `name` is used in messages. Exposed for the tests and for configs not read from a file.
nlohmann::json parse_config_text(const std::string& text, const std::string& name);

}  // namespace rv::config
