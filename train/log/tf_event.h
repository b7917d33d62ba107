// tf_event.h: TensorBoard's Event message, the subset ropevit writes and reads, encoded by hand
// (tensorboard/compat/proto/event.proto and summary.proto):
//
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
//                Summary summary = 5; SessionLog session_log = 7; }
//   Summary    { repeated Value value = 1; }
//   Value      { string tag = 1; float simple_value = 2; }
//   SessionLog { Status status = 1; }   // START = 1, STOP = 2, CHECKPOINT = 3
//
// An event holds one of file_version, summary or session_log. Fields equal to their default
// (0, empty) are left out, as protobuf itself does. Unknown fields are skipped when reading, so
// event files from other writers (PyTorch's SummaryWriter) read too, minus what we do not model.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rv::runlog {

struct Scalar {
  std::string tag;  // "train/loss": '/' groups the charts in TensorBoard
  float value = 0;
};

enum class SessionStatus : int { none = 0, start = 1, stop = 2, checkpoint = 3 };

struct Event {
  double wall_time = 0;          // unix seconds
  int64_t step = 0;
  std::string file_version;      // "brain.Event:2" in the first event of a file, else empty
  std::vector<Scalar> scalars;   // the summary's values, if any
  SessionStatus session = SessionStatus::none;
};

std::string encode_event(const Event& e);   // the serialized Event (a record's payload)
Event decode_event(std::string_view bytes);  // throws std::runtime_error on malformed bytes

}  // namespace rv::runlog
