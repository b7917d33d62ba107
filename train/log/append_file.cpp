// append_file.cpp: POSIX open(O_APPEND) / write / fsync / close with errors that name the file.
#include "train/log/append_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace rv::runlog {

AppendFile::AppendFile(const std::string& path, bool create_new) : path_(path) {
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (create_new ? O_EXCL : 0);
  fd_ = ::open(path.c_str(), flags, 0666);
  if (fd_ < 0) throw std::runtime_error("cannot open '" + path + "' for appending: " + std::strerror(errno));
}

AppendFile::~AppendFile() {
  try {
    close();
  } catch (...) {
  }
}

AppendFile::AppendFile(AppendFile&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}

AppendFile& AppendFile::operator=(AppendFile&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (...) {
    }
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void AppendFile::write(std::string_view bytes) {
  if (fd_ < 0) throw std::logic_error("AppendFile: write to closed file '" + path_ + "'");
  while (!bytes.empty()) {
    ssize_t w = ::write(fd_, bytes.data(), bytes.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("write to '" + path_ + "' failed: " + std::strerror(errno));
    }
    bytes.remove_prefix(size_t(w));
  }
}

void AppendFile::close() {
  if (fd_ < 0) return;
  int fd = std::exchange(fd_, -1);
  bool synced = ::fsync(fd) == 0 || errno == EINVAL;  // EINVAL: a file system that cannot fsync
  int err = errno;
  if (::close(fd) != 0 || !synced)
    throw std::runtime_error("closing '" + path_ + "' failed: " + std::strerror(synced ? errno : err));
}

}  // namespace rv::runlog
