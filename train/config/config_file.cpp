// config_file.cpp: strict JSON parsing with positions, and the include chain with cycle detection.
#include "train/config/config_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace rv::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Line and column (1-based) of byte offset `pos` in text (the parser reports bytes read).
std::pair<size_t, size_t> line_column(const std::string& text, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

// nlohmann's message reads "[json.exception.parse_error.101] parse error at line 3, column 5:
// syntax error while parsing ..."; keep what follows the position, which says what was wrong.
std::string parser_reason(const std::string& what) {
  const size_t col = what.find("column ");
  const size_t colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// One open object or array while parsing, to find duplicate keys and name them by dotted path.
struct Frame {
  bool object = false;
  std::string path;            // dotted path of this container
  std::string key;             // the key whose value is being read (objects)
  std::set<std::string> keys;  // keys seen so far (objects)
};

std::string show(const fs::path& p) { return p.lexically_normal().string(); }

void load(const fs::path& path, std::vector<fs::path>& chain, LoadedConfig& out) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(path, ec);
  for (size_t i = 0; i < chain.size(); ++i) {
    if (fs::weakly_canonical(chain[i], ec) != canon) continue;
    std::string cycle;
    for (size_t j = i; j < chain.size(); ++j) cycle += show(chain[j]) + " -> ";
    throw std::invalid_argument("include cycle: " + cycle + show(path));
  }
  const std::string from = chain.empty() ? "" : " (included from " + show(chain.back()) + ")";
  if (!fs::exists(path, ec)) throw std::invalid_argument("config file " + show(path) + " not found" + from);
  if (fs::is_directory(path, ec)) throw std::invalid_argument("config file " + show(path) + " is a folder" + from);
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw std::invalid_argument("cannot read config file " + show(path) + from);

  json j = parse_config_text(text.str(), show(path));
  if (!j.is_object())
    throw std::invalid_argument(show(path) + ": a config file holds one JSON object ({...}), got " +
                                std::string(j.type_name()));
  std::vector<std::string> includes;
  if (j.contains("include")) {
    const json& inc = j["include"];
    if (inc.is_string()) {
      includes.push_back(inc.get<std::string>());
    } else if (inc.is_array() && std::all_of(inc.begin(), inc.end(), [](const json& x) { return x.is_string(); })) {
      for (const json& x : inc) includes.push_back(x.get<std::string>());
    } else {
      throw std::invalid_argument(show(path) + ": include: expected a file name or a list of file names, got " +
                                  inc.dump());
    }
    j.erase("include");
  }
  chain.push_back(path);
  for (const std::string& inc : includes) {
    if (inc.empty()) throw std::invalid_argument(show(path) + ": include: an empty file name");
    load(path.parent_path() / inc, chain, out);
  }
  chain.pop_back();
  out.tree.merge(SourcedJson::from(j, show(path)));
  out.files.push_back(show(path));
}

}  // namespace

json parse_config_text(const std::string& text, const std::string& name) {
  std::vector<Frame> stack;
  std::string duplicate;  // first duplicate key found, as a dotted path
  // The callback sees keys and container starts/ends in order; it never drops a value.
  json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        Frame f;
        f.object = event == json::parse_event_t::object_start;
        if (!stack.empty()) f.path = stack.back().object ? join_key(stack.back().path, stack.back().key) : stack.back().path + "[]";
        stack.push_back(std::move(f));
        break;
      }
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second && duplicate.empty()) duplicate = join_key(f.path, f.key);
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, watch);
  } catch (const json::parse_error& e) {
    auto [line, col] = line_column(text, e.byte == 0 ? 0 : e.byte - 1);
    throw std::invalid_argument(name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                ": invalid JSON: " + parser_reason(e.what()));
  }
  if (!duplicate.empty())
    throw std::invalid_argument(name + ": " + duplicate + ": the key appears twice in one object (JSON keeps only "
                                "the last; remove one)");
  return j;
}

LoadedConfig load_config_file(const std::string& path) {
  LoadedConfig out;
  std::vector<fs::path> chain;
  load(fs::path(path), chain, out);
  return out;
}

}  // namespace rv::config
