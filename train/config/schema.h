// schema.h: the typed schema of a config: every key with its type, default, allowed values and
// one line of help, and the check that turns a merged JSON tree into clean, typed values.
//
// A Field binds one dotted key to one member of TrainConfig through an accessor, so the default
// is the member's initialiser and the key can never drift from the member:
//
//   RV_FIELD(optim.lr, "base learning rate").above(0)
//     == key "optim.lr", type from `double TrainConfig::optim.lr`, default from TrainConfig{}
//
// Types: bool, integer, number, string, lists of those (a single value is taken as a list of
// one), std::optional<T> (null = unset), and an open object (any keys; `meta`).
// Checking reports every problem at once, each as "<where it was set>: <dotted key>: <what>":
//   configs/x.json: optim.lr_min: unknown key (did you mean sched.min_lr?)
//   command line: optim.lr: expected a number > 0, got "fast" (a string)
#pragma once
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/config/sourced_json.h"
#include "train/config/train_config.h"

namespace rv::config {

enum class Kind { Bool, Int, Float, String, IntList, FloatList, StringList, Object };

// A config that does not check out: what() lists every problem, one per line.
class ConfigError : public std::invalid_argument {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

struct Field {
  std::string key;   // dotted: "optim.lr"
  std::string help;  // one line
  Kind kind = Kind::String;
  bool nullable = false;  // std::optional member: null means unset
  // Allowed values. Bounds apply to numbers and to every item of a number list.
  std::optional<double> lo, hi;
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;  // strings (and string list items) must be one of these
  size_t min_len = 0, max_len = std::numeric_limits<size_t>::max();  // lists
  // An extra rule on a value that passed the checks above: "" or what is wrong with it.
  std::function<std::string(const nlohmann::json&)> rule;
  std::string rule_text;  // what the rule wants, for the help

  std::function<nlohmann::json(const TrainConfig&)> get;
  std::function<void(TrainConfig&, const nlohmann::json&)> set;

  Field& at_least(double v) { return lo = v, lo_open = false, *this; }
  Field& above(double v) { return lo = v, lo_open = true, *this; }
  Field& at_most(double v) { return hi = v, hi_open = false, *this; }
  Field& below(double v) { return hi = v, hi_open = true, *this; }
  Field& one_of(std::vector<std::string> c) { return choices = std::move(c), *this; }
  Field& length(size_t lo_len, size_t hi_len) { return min_len = lo_len, max_len = hi_len, *this; }
  Field& with_rule(std::string text, std::function<std::string(const nlohmann::json&)> r) {
    return rule_text = std::move(text), rule = std::move(r), *this;
  }

  // "a number > 0", "one of adamw, lamb, sgd", "a list of 1 to 2 integers > 0 (or null)".
  std::string describe() const;
  // Checks v against this field and normalises it in place (an integral 1e3 becomes 1000 for an
  // integer, a single value becomes a list of one); returns "" or what is wrong.
  std::string check(nlohmann::json& v) const;
};

namespace detail {
template <class T> struct KindOf;
template <> struct KindOf<bool> { static constexpr Kind kind = Kind::Bool; };
template <> struct KindOf<int64_t> { static constexpr Kind kind = Kind::Int; };
template <> struct KindOf<double> { static constexpr Kind kind = Kind::Float; };
template <> struct KindOf<std::string> { static constexpr Kind kind = Kind::String; };
template <> struct KindOf<std::vector<int64_t>> { static constexpr Kind kind = Kind::IntList; };
template <> struct KindOf<std::vector<double>> { static constexpr Kind kind = Kind::FloatList; };
template <> struct KindOf<std::vector<std::string>> { static constexpr Kind kind = Kind::StringList; };
template <> struct KindOf<nlohmann::json> { static constexpr Kind kind = Kind::Object; };
template <class T> struct Optional { using type = T; static constexpr bool value = false; };
template <class T> struct Optional<std::optional<T>> { using type = T; static constexpr bool value = true; };
}  // namespace detail

// A field for the member `access` returns (a generic lambda: [](auto& c) -> auto& { ... }).
template <class Access>
Field make_field(std::string key, Access access, std::string help) {
  using Member = std::remove_cvref_t<decltype(access(std::declval<TrainConfig&>()))>;
  using Opt = detail::Optional<Member>;
  using Value = typename Opt::type;
  Field f;
  f.key = std::move(key);
  f.help = std::move(help);
  f.kind = detail::KindOf<Value>::kind;
  f.nullable = Opt::value;
  f.get = [access](const TrainConfig& c) -> nlohmann::json {
    const auto& m = access(c);
    if constexpr (Opt::value) return m ? nlohmann::json(*m) : nlohmann::json(nullptr);
    else return nlohmann::json(m);
  };
  f.set = [access](TrainConfig& c, const nlohmann::json& v) {
    auto& m = access(c);
    if constexpr (Opt::value) {
      if (v.is_null()) m.reset();
      else m = v.get<Value>();
    } else if constexpr (std::is_same_v<Value, nlohmann::json>) {
      m = v;
    } else {
      m = v.get<Value>();
    }
  };
  return f;
}

// RV_FIELD(optim.lr, "help"): the key is the member's path, spelled once.
#define RV_FIELD(path, help) ::rv::config::make_field(#path, [](auto& c) -> auto& { return c.path; }, help)

class Schema {
 public:
  explicit Schema(std::vector<Field> fields);
  const std::vector<Field>& fields() const { return fields_; }
  const Field* find(const std::string& key) const;
  // True for a group of keys ("optim", or "aug" of "aug.mixup"); false for a field.
  bool is_group(const std::string& key) const;
  // The group names, in the order the fields list them.
  std::vector<std::string> groups() const;

  // Every field's default, from a default-constructed TrainConfig, marked "default".
  SourcedJson defaults() const;
  // Checks every key of tree (unknown keys, types, ranges; keys starting with "_" are comments)
  // and normalises the values in place; throws ConfigError listing every problem.
  void check(SourcedJson& tree) const;
  // The keys (and groups) closest to a misspelt key, nearest first: by whole-path edits, by the
  // last part in another group ("optim.min_lr" -> "sched.min_lr"), by the last part's words in
  // another order ("lr_min" -> "min_lr") or a subset of them ("warmup" -> "sched.warmup_lr").
  std::vector<std::string> suggest(const std::string& key) const;

  // The typed config from a tree that passed check().
  TrainConfig to_config(const SourcedJson& tree) const;
  // A config's values as a tree of every key (the resolved config's JSON).
  nlohmann::json to_json(const TrainConfig& cfg) const;

 private:
  std::vector<Field> fields_;
};

// The schema of TrainConfig (train/config/train_schema.cpp).
const Schema& train_schema();

}  // namespace rv::config
