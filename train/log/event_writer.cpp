// event_writer.cpp: the event file itself (POSIX file descriptor, append-only) and its name.
#include "train/log/event_writer.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "train/log/tfrecord.h"

namespace rv::runlog {

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

// Two writers opened in the same second by one process still get distinct names.
std::atomic<int64_t> g_file_counter{0};

}  // namespace

std::string event_file_name(int64_t unix_secs, const std::string& host, int64_t pid, int64_t counter) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%010lld", (long long)unix_secs);
  std::string h = host;
  for (char& c : h)
    if (c == '/') c = '_';  // a host name is one path component
  return "events.out.tfevents." + std::string(secs) + "." + h + "." + std::to_string(pid) + "." +
         std::to_string(counter);
}

EventFileWriter::EventFileWriter(const std::string& dir, EventWriterOptions options)
    : flush_every_s_(options.flush_every_s) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("EventFileWriter: cannot create folder '" + dir + "': " + ec.message());
  double now = unix_now();
  path_ = (std::filesystem::path(dir) /
           event_file_name(int64_t(now), options.host.empty() ? host_name() : options.host, ::getpid(),
                           g_file_counter.fetch_add(1)))
              .string();
  file_ = AppendFile(path_, /*create_new=*/true);  // never append to someone else's file
  Event first;
  first.wall_time = now;
  first.file_version = "brain.Event:2";  // version 2 turns on TensorBoard's restart purge
  add_event(first);
  write_out();  // the file is valid and recognisable from the start
}

EventFileWriter::~EventFileWriter() {
  try {
    close();
  } catch (...) {
  }
}

void EventFileWriter::add_scalars(int64_t step, const std::vector<Scalar>& values) {
  if (values.empty()) return;
  Event e;
  e.step = step;
  e.scalars = values;
  add_event(std::move(e));
}

void EventFileWriter::mark_restart(int64_t first_new_step) {
  Event e;
  e.step = first_new_step;
  e.session = SessionStatus::start;
  add_event(std::move(e));
}

void EventFileWriter::add_event(Event e) {
  if (!file_.is_open()) throw std::logic_error("EventFileWriter: add after close ('" + path_ + "')");
  if (e.wall_time == 0) e.wall_time = unix_now();
  append_record(buffer_, encode_event(e));
  auto since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_write_).count();
  if (since >= flush_every_s_) write_out();
}

void EventFileWriter::write_out() {
  if (!buffer_.empty()) file_.write(buffer_);
  buffer_.clear();
  last_write_ = std::chrono::steady_clock::now();
}

void EventFileWriter::flush() {
  if (file_.is_open()) write_out();
}

void EventFileWriter::close() {
  if (!file_.is_open()) return;
  write_out();
  file_.close();
}

}  // namespace rv::runlog
