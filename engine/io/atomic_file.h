// atomic_file.h: writes a file so that its name shows either the old content or the complete
// new content, never a truncated mix, even if the process dies or the machine loses power.
//
//   AtomicFileWriter f("model.safetensors");   // writes to "model.safetensors.tmp.<pid>"
//   f.write(bytes, n); ...
//   f.commit();   // fsync the data, rename over the real name, fsync the directory
//
// Destroying the writer without commit() (an exception on the way) removes the temporary file.
#pragma once
#include <cstddef>
#include <string>

namespace rv {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);  // all of it, or throws
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace rv
