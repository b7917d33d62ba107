// jsonl_log.cpp: the log.jsonl writer and its resume cut.
#include "train/log/jsonl_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/io/atomic_file.h"

namespace rv::runlog {

namespace {

void replace_nonfinite(nlohmann::json& j, const std::string& prefix, nlohmann::json& flags) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      replace_nonfinite(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), flags);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) replace_nonfinite(j[i], prefix + "." + std::to_string(i), flags);
  } else if (j.is_number_float()) {
    double v = j.get<double>();
    if (!std::isfinite(v)) {
      flags[prefix] = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
      j = nullptr;
    }
  }
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

nlohmann::json json_safe_record(nlohmann::json record) {
  nlohmann::json flags = nlohmann::json::object();
  replace_nonfinite(record, "", flags);
  if (!flags.empty()) record["nonfinite"] = std::move(flags);
  return record;
}

JsonlCut cut_jsonl_after_step(const std::string& path, int64_t last_step) {
  JsonlCut cut;
  if (!std::filesystem::exists(path)) return cut;
  const std::string bytes = read_all(path);
  std::string kept;
  size_t pos = 0, line_no = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    ++line_no;
    if (end == std::string::npos) {  // no newline: a write cut short by a crash
      cut.partial_tail = true;
      break;
    }
    std::string_view line(bytes.data() + pos, end - pos);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer())
      throw std::runtime_error("resume: '" + path + "' line " + std::to_string(line_no) +
                               " is not a JSON object with an integer \"step\"; refusing to cut the log");
    if (j["step"].get<int64_t>() <= last_step) {
      kept.append(bytes, pos, end - pos + 1);
      ++cut.kept;
    } else {
      ++cut.dropped;
    }
    pos = end + 1;
  }
  if (cut.dropped > 0 || cut.partial_tail) {
    AtomicFileWriter w(path);
    w.write(kept.data(), kept.size());
    w.commit();
  }
  return cut;
}

JsonlLog::JsonlLog(const std::string& path, std::optional<int64_t> resume_after_step) {
  if (resume_after_step) {
    cut_jsonl_after_step(path, *resume_after_step);
  } else {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  file_ = AppendFile(path, /*create_new=*/false);
}

void JsonlLog::write(nlohmann::json record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
    throw std::invalid_argument("JsonlLog::write: a record must be a JSON object with an integer \"step\" (the resume "
                                "rule keys on it); got " + record.dump().substr(0, 200));
  std::string line = json_safe_record(std::move(record)).dump();  // one line: dump() without indent has no newline
  line.push_back('\n');
  file_.write(line);
}

}  // namespace rv::runlog
