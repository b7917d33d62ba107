// schema.cpp: checking values against fields, the unknown-key suggestions, and the conversions
// between a checked tree and TrainConfig.
#include "train/config/schema.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "train/suggest.h"

namespace rv::config {
namespace {

using nlohmann::json;

std::string join_lines(const std::vector<std::string>& problems) {
  if (problems.size() == 1) return problems[0];
  std::string s = std::to_string(problems.size()) + " problems in the config:";
  for (const std::string& p : problems) s += "\n  " + p;
  return s;
}

// 0 not 0.0, 1e-05 as JSON writes it: bounds read as a person writes them.
std::string number_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(int64_t(v));
  return json(v).dump();
}

Kind item_kind(Kind k) {
  switch (k) {
    case Kind::IntList: return Kind::Int;
    case Kind::FloatList: return Kind::Float;
    case Kind::StringList: return Kind::String;
    default: return k;
  }
}
bool is_list(Kind k) { return k == Kind::IntList || k == Kind::FloatList || k == Kind::StringList; }

std::string kind_noun(Kind k, bool plural) {
  switch (k) {
    case Kind::Bool: return plural ? "booleans" : "true or false";
    case Kind::Int: return plural ? "integers" : "an integer";
    case Kind::Float: return plural ? "numbers" : "a number";
    case Kind::String: return plural ? "strings" : "a string";
    case Kind::Object: return "an object of free-form keys";
    default: return "a list";
  }
}

// " > 0", " in [0, 1)", ...: the bounds of a field, "" when it has none.
std::string bounds_text(const Field& f) {
  if (f.lo && f.hi)
    return " in " + std::string(f.lo_open ? "(" : "[") + number_text(*f.lo) + ", " + number_text(*f.hi) +
           (f.hi_open ? ")" : "]");
  if (f.lo) return std::string(f.lo_open ? " > " : " >= ") + number_text(*f.lo);
  if (f.hi) return std::string(f.hi_open ? " < " : " <= ") + number_text(*f.hi);
  return "";
}

std::string shown_with_type(const json& v) {
  return v.dump() + " (" + (v.is_array() ? "a list" : std::string("a ") + v.type_name()) + ")";
}

// Checks one scalar against an item kind, normalising integral numbers for Int.
std::string check_scalar(const Field& f, Kind k, json& v) {
  switch (k) {
    case Kind::Bool:
      if (!v.is_boolean()) return "expected true or false, got " + shown_with_type(v);
      return "";
    case Kind::Int:
      if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) v = int64_t(d);
      }
      if (!v.is_number_integer()) return "expected " + kind_noun(Kind::Int, false) + ", got " + shown_with_type(v);
      break;
    case Kind::Float:
      if (!v.is_number()) return "expected a number, got " + shown_with_type(v);
      v = v.get<double>();
      if (!std::isfinite(v.get<double>())) return "expected a finite number";
      break;
    case Kind::String:
      if (!v.is_string()) return "expected a string, got " + shown_with_type(v);
      if (!f.choices.empty()) {
        const std::string s = v.get<std::string>();
        if (std::find(f.choices.begin(), f.choices.end(), s) == f.choices.end()) {
          std::string list;
          for (size_t i = 0; i < f.choices.size(); ++i) list += (i ? ", " : "") + f.choices[i];
          return v.dump() + " is not one of " + list + did_you_mean(close_matches(s, f.choices));
        }
      }
      return "";
    default:
      return "";
  }
  // Numbers: the bounds.
  const double d = v.get<double>();
  const bool low = f.lo && (f.lo_open ? d <= *f.lo : d < *f.lo);
  const bool high = f.hi && (f.hi_open ? d >= *f.hi : d > *f.hi);
  if (low || high) return number_text(d) + " is out of range (expected" + bounds_text(f) + ")";
  return "";
}

// Words of a key's last part ("min_lr" -> {"lr", "min"}) and the group it is in.
std::string last_part(const std::string& key) { return key.substr(key.rfind('.') + 1); }
std::string group_of(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}
std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> w;
  std::istringstream in(s);
  for (std::string x; std::getline(in, x, '_');)
    if (!x.empty()) w.push_back(x);
  std::sort(w.begin(), w.end());
  return w;
}
std::string joined(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : "_") + x;
  return s;
}

// How far a misspelt key is from a candidate: the best of the readings in Schema::suggest's comment.
size_t key_distance(const std::string& typed, const std::string& cand) {
  const size_t other_group = group_of(typed) == group_of(cand) ? 0 : 1;
  const std::string a = last_part(typed), b = last_part(cand);
  size_t d = edit_distance(typed, cand);
  d = std::min(d, edit_distance(a, b) + other_group);
  const std::vector<std::string> wa = words(a), wb = words(b);
  d = std::min(d, edit_distance(joined(wa), joined(wb)) + other_group);
  if (!wa.empty() && wa.size() < wb.size() && std::includes(wb.begin(), wb.end(), wa.begin(), wa.end()))
    d = std::min(d, other_group + (wb.size() - wa.size()));
  return d;
}

void strip_comments(json& node) {
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end();) {
    if (it.key().rfind('_', 0) == 0) {
      it = node.erase(it);
    } else {
      strip_comments(*it);
      ++it;
    }
  }
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::invalid_argument(join_lines(problems)), problems_(std::move(problems)) {}

std::string Field::describe() const {
  std::string s;
  if (kind == Kind::Object) return kind_noun(kind, false);
  const Kind ik = item_kind(kind);
  if (ik == Kind::String && !choices.empty()) {
    s = "one of ";
    for (size_t i = 0; i < choices.size(); ++i) s += (i ? ", " : "") + choices[i];
    if (is_list(kind)) s = "a list of (" + s + ")";
  } else if (is_list(kind)) {
    s = "a list of ";
    if (min_len == max_len) s += std::to_string(min_len) + " ";
    else if (max_len != std::numeric_limits<size_t>::max()) s += std::to_string(min_len) + " to " + std::to_string(max_len) + " ";
    s += kind_noun(ik, true) + bounds_text(*this);
  } else {
    s = kind_noun(ik, false) + bounds_text(*this);
  }
  if (!rule_text.empty()) s += ", " + rule_text;
  if (nullable) s += " (or null: unset)";
  return s;
}

std::string Field::check(json& v) const {
  if (v.is_null()) return nullable ? "" : "expected " + describe() + ", got null";
  if (kind == Kind::Object) return v.is_object() ? "" : "expected " + describe() + ", got " + shown_with_type(v);
  if (is_list(kind)) {
    if (!v.is_array()) v = json::array({v});  // a single value is a list of one
    if (v.size() < min_len || v.size() > max_len)
      return "expected " + describe() + ", got " + std::to_string(v.size()) + " item" + (v.size() == 1 ? "" : "s");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string e = check_scalar(*this, item_kind(kind), v[i]);
      if (!e.empty()) return "item " + std::to_string(i) + ": " + e;
    }
  } else {
    std::string e = check_scalar(*this, kind, v);
    if (!e.empty()) {
      // A type error says what the key takes as a whole ("a number > 0"), a bad value says why.
      if (e.rfind("expected ", 0) == 0) return "expected " + describe() + ", got " + shown_with_type(v);
      return e;
    }
  }
  return rule ? rule(v) : "";
}

Schema::Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

const Field* Schema::find(const std::string& key) const {
  for (const Field& f : fields_)
    if (f.key == key) return &f;
  return nullptr;
}

bool Schema::is_group(const std::string& key) const {
  for (const Field& f : fields_)
    if (f.key.size() > key.size() && f.key.rfind(key + ".", 0) == 0) return true;
  return false;
}

std::vector<std::string> Schema::groups() const {
  std::vector<std::string> out;
  for (const Field& f : fields_) {
    const std::string g = f.key.substr(0, f.key.find('.'));
    if (g != f.key && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  }
  return out;
}

SourcedJson Schema::defaults() const {
  const TrainConfig d;
  SourcedJson tree;
  for (const Field& f : fields_) tree.set(f.key, f.get(d), kFromDefault);
  return tree;
}

std::vector<std::string> Schema::suggest(const std::string& key) const {
  std::vector<std::string> candidates;
  for (const Field& f : fields_) candidates.push_back(f.key);
  for (const std::string& g : groups()) candidates.push_back(g);
  const size_t budget = std::max<size_t>(1, last_part(key).size() / 3);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& c : candidates) {
    const size_t d = key_distance(key, c);
    if (d <= budget) scored.emplace_back(d, c);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < 3; ++i) out.push_back(scored[i].second);
  return out;
}

void Schema::check(SourcedJson& tree) const {
  std::vector<std::string> problems;
  auto where = [&](const std::string& key) {
    std::string o = tree.origin_of(key);
    return (o.empty() ? std::string("config") : o) + ": " + key + ": ";
  };
  std::function<void(json&, const std::string&)> walk = [&](json& node, const std::string& prefix) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key().rfind('_', 0) == 0) continue;  // "_comment": a note for people
      const std::string key = join_key(prefix, it.key());
      if (const Field* f = find(key)) {
        std::string e = f->check(it.value());
        if (!e.empty()) problems.push_back(where(key) + e);
      } else if (is_group(key)) {
        if (it.value().is_object()) {
          walk(it.value(), key);
        } else {
          std::string some;
          for (const Field& g : fields_)
            if (g.key.rfind(key + ".", 0) == 0 && std::count(some.begin(), some.end(), ',') < 2)
              some += (some.empty() ? "" : ", ") + g.key;
          problems.push_back(where(key) + "is a group of settings (" + some + ", ...): expected an object, got " +
                             shown_with_type(it.value()));
        }
      } else {
        problems.push_back(where(key) + "unknown key" + did_you_mean(suggest(key)));
      }
    }
  };
  if (!tree.value.is_object()) throw ConfigError({"config: expected a JSON object, got " + shown_with_type(tree.value)});
  walk(tree.value, "");
  if (!problems.empty()) throw ConfigError(std::move(problems));
  strip_comments(tree.value);
  for (auto it = tree.origin.begin(); it != tree.origin.end();) {
    // Comments are gone from the tree, so their provenance goes too.
    bool comment = it->first.rfind('_', 0) == 0 || it->first.find("._") != std::string::npos;
    it = comment ? tree.origin.erase(it) : std::next(it);
  }
}

TrainConfig Schema::to_config(const SourcedJson& tree) const {
  TrainConfig cfg;
  for (const Field& f : fields_) {
    const json* v = tree.find(f.key);
    if (v) f.set(cfg, *v);
  }
  return cfg;
}

json Schema::to_json(const TrainConfig& cfg) const {
  SourcedJson tree;
  for (const Field& f : fields_) tree.set(f.key, f.get(cfg), kFromDefault);
  return tree.value;
}

}  // namespace rv::config
