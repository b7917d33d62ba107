// sourced_json.cpp: merging JSON trees key by key while tracking where each leaf came from.
#include "train/config/sourced_json.h"

#include <stdexcept>

namespace rv::config {
namespace {

using nlohmann::json;

// Drops the provenance of `key` and of everything below it (its value is being replaced).
void forget(std::map<std::string, std::string>& origin, const std::string& key) {
  origin.erase(key);
  const std::string below = key + ".";
  for (auto it = origin.lower_bound(below); it != origin.end() && it->first.rfind(below, 0) == 0;)
    it = origin.erase(it);
}

// Records `from` for every leaf of v, placed at `key`.
void record(std::map<std::string, std::string>& origin, const std::string& key, const json& v,
            const std::string& from) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, sub] : v.items()) record(origin, join_key(key, k), sub, from);
  } else {
    origin[key] = from;
  }
}

// Merges src into dst (both objects) under the dotted prefix `key`, with per-leaf provenance
// taken from src_origin.
void merge_into(json& dst, std::map<std::string, std::string>& origin, const json& src,
                const std::map<std::string, std::string>& src_origin, const std::string& key) {
  for (const auto& [k, v] : src.items()) {
    const std::string path = join_key(key, k);
    if (v.is_object() && dst.contains(k) && dst[k].is_object()) {
      merge_into(dst[k], origin, v, src_origin, path);
      if (!dst[k].empty()) origin.erase(path);  // no longer an empty-object leaf
      if (v.empty() && dst[k].empty()) {  // {} on {}: the leaf's provenance moves to src
        auto it = src_origin.find(path);
        if (it != src_origin.end()) origin[path] = it->second;
      }
      continue;
    }
    forget(origin, path);
    dst[k] = v;
    // Copy src's provenance for everything at or below path.
    auto it = src_origin.find(path);
    if (it != src_origin.end()) origin[path] = it->second;
    const std::string below = path + ".";
    for (auto jt = src_origin.lower_bound(below); jt != src_origin.end() && jt->first.rfind(below, 0) == 0; ++jt)
      origin[jt->first] = jt->second;
  }
}

}  // namespace

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

SourcedJson SourcedJson::from(const json& value, const std::string& from) {
  SourcedJson s;
  s.value = value;
  for (const auto& [k, v] : value.items()) record(s.origin, k, v, from);
  return s;
}

void SourcedJson::merge(const SourcedJson& src) { merge_into(value, origin, src.value, src.origin, ""); }

void SourcedJson::set(const std::string& dotted_key, const json& v, const std::string& from) {
  // Walk down to the parent object, creating groups that do not exist yet.
  json* node = &value;
  std::string walked;
  size_t start = 0;
  for (size_t dot; (dot = dotted_key.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string part = dotted_key.substr(start, dot - start);
    walked = join_key(walked, part);
    if (!node->contains(part)) {
      (*node)[part] = json::object();
      forget(origin, walked);  // an empty group is a leaf until something is put in it
    }
    node = &(*node)[part];
    if (!node->is_object())
      throw std::invalid_argument(dotted_key + ": " + walked + " is a value (" + node->dump() +
                                  "), not a group of settings");
  }
  // The last part: a one-key tree merged in, so objects merge and the rest replaces.
  const std::string last = dotted_key.substr(start);
  SourcedJson one;
  one.value = json::object({{last, v}});
  record(one.origin, join_key(walked, last), v, from);
  merge_into(*node, origin, one.value, one.origin, walked);
}

std::string SourcedJson::origin_of(const std::string& dotted_key) const {
  auto it = origin.find(dotted_key);
  if (it != origin.end()) return it->second;
  it = origin.lower_bound(dotted_key + ".");
  if (it != origin.end() && it->first.rfind(dotted_key + ".", 0) == 0) return it->second;
  return "";
}

const json* SourcedJson::find(const std::string& dotted_key) const {
  const json* node = &value;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted_key.find('.', start);
    const std::string part = dotted_key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &(*node)[part];
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

}  // namespace rv::config
