// event_reader.h: reads TensorBoard event files back: one file (every record's CRCs checked,
// every event decoded) or a whole folder as scalar curves, with TensorBoard's restart rule
// applied. Used by the tests and by tools that plot a run without Python.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/log/tf_event.h"

namespace rv::runlog {

struct EventFile {
  std::vector<Event> events;
  bool truncated_tail = false;  // the file ends inside a record (its writer died mid-write)
};

// Throws std::runtime_error naming the file on a CRC mismatch or an undecodable event.
EventFile read_event_file(const std::string& path);

struct ScalarPoint {
  int64_t step = 0;
  double wall_time = 0;
  float value = 0;
};

// Every "*tfevents*" file in `dir`, in name order (the names start with the creation time), as
// tag -> points in file order. A session_log START at step S drops the points already read with
// step >= S, for every tag, as TensorBoard does (so a resumed run reads as one run).
std::map<std::string, std::vector<ScalarPoint>> read_scalars(const std::string& dir);

}  // namespace rv::runlog
