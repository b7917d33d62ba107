// event_writer.h: writes a TensorBoard event file, with no Python and no protobuf library.
//
//   runlog::EventFileWriter tb(run_dir + "/tb");             // events.out.tfevents.<secs>.<host>.<pid>.<n>
//   tb.mark_restart(resumed_step + 1);                        // only when resuming (see below)
//   tb.add_scalars(step, {{"train/loss", 2.31f}, {"train/lr", 1e-3f}});
//   tb.close();                                               // or the destructor
//
// Each writer makes a new file (TensorBoard reads every *tfevents* file of a folder, in name
// order), whose first record is Event{wall_time, file_version "brain.Event:2"}.
//
// Flush policy: records collect in memory and go to the file when `flush_every_s` has passed
// since the last write (checked on each add), on flush(), and at close(), which also fsyncs.
// A crash loses at most the last few seconds, and may leave a half-written last record, which
// TensorBoard and read_event_file() skip. The file is append-only: written bytes never change.
//
// Restart marker: a run resumed from a checkpoint taken after step S writes
// Event{step: S+1, session_log{status: START}}; TensorBoard then drops every point it loaded with
// step >= S+1 (from the crashed run's file), so the curves read as one run.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "train/log/append_file.h"
#include "train/log/tf_event.h"

namespace rv::runlog {

// "events.out.tfevents.<unix secs, 10 digits>.<host>.<pid>.<counter>" (TensorBoard's convention).
std::string event_file_name(int64_t unix_secs, const std::string& host, int64_t pid, int64_t counter);

struct EventWriterOptions {
  double flush_every_s = 5;  // PyTorch uses 120 s, which users read as a hung run
  std::string host;          // empty: gethostname()
};

class EventFileWriter {
 public:
  // Creates `dir` if needed and a new event file in it; throws std::runtime_error naming the
  // path when it cannot.
  explicit EventFileWriter(const std::string& dir, EventWriterOptions options = {});
  ~EventFileWriter();  // close(), errors swallowed (call close() to see them)
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One event holding several scalars (one chart point each), at wall time now.
  void add_scalars(int64_t step, const std::vector<Scalar>& values);
  void add_scalar(const std::string& tag, int64_t step, float value) { add_scalars(step, {{tag, value}}); }
  // session_log START at `first_new_step`: see "Restart marker" above.
  void mark_restart(int64_t first_new_step);
  // Any event, as given (wall_time 0 is filled in with now). Used by the two above.
  void add_event(Event e);

  void flush();  // buffered records -> the file (the OS page cache; no fsync)
  void close();  // flush, fsync, close; later adds throw

  const std::string& path() const { return path_; }

 private:
  void write_out();
  std::string path_;
  AppendFile file_;
  std::string buffer_;
  double flush_every_s_;
  std::chrono::steady_clock::time_point last_write_;
};

}  // namespace rv::runlog
