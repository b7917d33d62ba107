// event_reader.cpp: event files -> events -> scalar curves.
#include "train/log/event_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "train/log/tfrecord.h"

namespace rv::runlog {

EventFile read_event_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("read_event_file: cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  RecordScan scan = scan_records(bytes, path);
  EventFile file;
  file.truncated_tail = scan.truncated_tail;
  file.events.reserve(scan.payloads.size());
  for (size_t i = 0; i < scan.payloads.size(); ++i) {
    try {
      file.events.push_back(decode_event(scan.payloads[i]));
    } catch (const std::exception& e) {
      throw std::runtime_error("read_event_file: '" + path + "', record " + std::to_string(i) + ": " + e.what());
    }
  }
  return file;
}

std::map<std::string, std::vector<ScalarPoint>> read_scalars(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::vector<ScalarPoint>> curves;
  for (const std::string& f : files) {
    for (const Event& e : read_event_file(f).events) {
      if (e.session == SessionStatus::start) {
        for (auto& [tag, points] : curves)
          std::erase_if(points, [&](const ScalarPoint& p) { return p.step >= e.step; });
      }
      for (const Scalar& s : e.scalars) curves[s.tag].push_back({e.step, e.wall_time, s.value});
    }
  }
  return curves;
}

}  // namespace rv::runlog
