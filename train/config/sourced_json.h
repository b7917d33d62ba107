// sourced_json.h: a JSON config tree that remembers, for every value, where it was set:
// "default", a config file's path, or "command line". Merging one tree into another is the one
// rule every layer of a config uses (defaults <- base file <- file <- command line):
//   - objects merge key by key, recursively;
//   - any other value (number, string, bool, null, list) replaces what was there, whole.
// Provenance is kept per leaf (a non-object value, or an empty object) under its dotted path,
// so `--print-config` can say where each effective value came from.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rv::config {

inline constexpr const char* kFromDefault = "default";
inline constexpr const char* kFromCommandLine = "command line";

// "a" + "b" -> "a.b"; "" + "b" -> "b".
std::string join_key(const std::string& prefix, const std::string& key);

struct SourcedJson {
  nlohmann::json value = nlohmann::json::object();
  std::map<std::string, std::string> origin;  // dotted leaf path -> where it was set

  // A tree whose every leaf came from `from`.
  static SourcedJson from(const nlohmann::json& value, const std::string& from);

  // Merges `src` on top of this tree by the rules above; src's provenance wins where it writes.
  void merge(const SourcedJson& src);
  // Writes one value at a dotted path (creating missing groups), merging when both the value and
  // what is there are objects. Throws std::invalid_argument when a prefix of the path holds a
  // value that is not an object ("optim.lr.x" where optim.lr is a number).
  void set(const std::string& dotted_key, const nlohmann::json& v, const std::string& from);

  // Where the value at `dotted_key` was set: its own entry, or for a group the entry of its first
  // leaf; "" when nothing under it is known.
  std::string origin_of(const std::string& dotted_key) const;
  // The value at a dotted path, or nullptr when the path does not exist.
  const nlohmann::json* find(const std::string& dotted_key) const;
};

}  // namespace rv::config
