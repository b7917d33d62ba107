// tf_event.cpp: Event <-> protobuf bytes (field numbers in tf_event.h).
#include "train/log/tf_event.h"

#include <stdexcept>

#include "train/log/proto_wire.h"

namespace rv::runlog {

std::string encode_event(const Event& e) {
  if (!e.file_version.empty() + !e.scalars.empty() + (e.session != SessionStatus::none) > 1)
    throw std::invalid_argument("encode_event: an event holds one of file_version, scalars or session_log, not several");
  std::string out;
  if (e.wall_time != 0) proto::put_double(out, 1, e.wall_time);
  if (e.step != 0) proto::put_int64(out, 2, e.step);
  if (!e.file_version.empty()) proto::put_bytes(out, 3, e.file_version);
  if (!e.scalars.empty()) {
    std::string summary, value;
    for (const Scalar& s : e.scalars) {
      value.clear();
      proto::put_bytes(value, 1, s.tag);
      proto::put_float(value, 2, s.value);  // written even when 0: a logged 0 is a real point
      proto::put_bytes(summary, 1, value);
    }
    proto::put_bytes(out, 5, summary);
  }
  if (e.session != SessionStatus::none) {
    std::string log;
    proto::put_int64(log, 1, int64_t(e.session));
    proto::put_bytes(out, 7, log);
  }
  return out;
}

namespace {

// A value without simple_value (an image, a histogram, a tensor-form scalar) is not a Scalar:
// returns false so the caller skips it.
bool decode_value(std::string_view bytes, Scalar& s) {
  bool has_simple = false;
  proto::Reader r(bytes, "Summary.Value");
  proto::Reader::Field f;
  while (r.next(f)) {
    if (f.number == 1 && f.type == proto::kLengthDelimited) s.tag = std::string(f.data);
    else if (f.number == 2 && f.type == proto::kFixed32) s.value = f.as_float(), has_simple = true;
  }
  return has_simple;
}

}  // namespace

Event decode_event(std::string_view bytes) {
  Event e;
  proto::Reader r(bytes, "Event");
  proto::Reader::Field f;
  while (r.next(f)) {
    if (f.number == 1 && f.type == proto::kFixed64) {
      e.wall_time = f.as_double();
    } else if (f.number == 2 && f.type == proto::kVarint) {
      e.step = int64_t(f.varint);
    } else if (f.number == 3 && f.type == proto::kLengthDelimited) {
      e.file_version = std::string(f.data);
    } else if (f.number == 5 && f.type == proto::kLengthDelimited) {
      proto::Reader sr(f.data, "Summary");
      proto::Reader::Field v;
      while (sr.next(v))
        if (Scalar s; v.number == 1 && v.type == proto::kLengthDelimited && decode_value(v.data, s))
          e.scalars.push_back(std::move(s));
    } else if (f.number == 7 && f.type == proto::kLengthDelimited) {
      proto::Reader lr(f.data, "SessionLog");
      proto::Reader::Field s;
      e.session = SessionStatus::none;
      while (lr.next(s))
        if (s.number == 1 && s.type == proto::kVarint) e.session = SessionStatus(int(s.varint));
    }
    // other fields (graph_def, tagged_run_metadata, ...) are skipped
  }
  return e;
}

}  // namespace rv::runlog
