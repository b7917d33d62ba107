// append_file.h: a file that only grows, for the run logs (event files, log.jsonl,
// summary.csv). Each write() goes straight to the kernel with O_APPEND, so a record written is
// readable at once and survives a crash of the process (not of the machine: close() fsyncs).
// A record is written with one write() call, so a crash leaves at most one partial record, at
// the end, which the readers detect.
#pragma once
#include <string>
#include <string_view>

namespace rv::runlog {

class AppendFile {
 public:
  AppendFile() = default;
  // create_new: fail if the file exists (O_EXCL); otherwise create it or append to it.
  AppendFile(const std::string& path, bool create_new);
  ~AppendFile();  // close(), errors swallowed
  AppendFile(AppendFile&& o) noexcept;
  AppendFile& operator=(AppendFile&& o) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  void write(std::string_view bytes);  // all of it, or throws std::runtime_error naming the file
  void close();                        // fsync + close; throws on failure; then is_open() is false
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace rv::runlog
