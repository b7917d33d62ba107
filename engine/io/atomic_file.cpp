// atomic_file.cpp: temp file + fsync + rename + directory fsync (POSIX).
//
// Why each step: rename() is atomic, so readers see the old file or the new one; the fsync
// before it makes sure the new name never points at data still sitting in the page cache (after
// a power loss that would be a file of zeros); the fsync of the directory makes the rename
// itself durable.
#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace rv {

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    int err = errno;
    throw std::runtime_error("cannot write '" + path_ + "': creating temporary file '" + tmp_ +
                             "' failed: " + std::strerror(err));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw std::runtime_error("cannot write '" + path_ + "': " + what + " failed: " + std::strerror(err));
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter::write after commit or failure ('" + path_ + "')");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // write() may write less than asked (signals, large sizes); loop until done.
    ssize_t w = ::write(fd_, p, n > (size_t(1) << 30) ? (size_t(1) << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write to '" + tmp_ + "'", errno);
    }
    p += w;
    n -= size_t(w);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter::commit twice or after failure ('" + path_ + "')");
  if (::fsync(fd_) != 0) fail("fsync of '" + tmp_ + "'", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close of '" + tmp_ + "'", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename of '" + tmp_ + "'", errno);
  committed_ = true;
  std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  const std::string dir = parent.empty() ? std::string(1, '.') : parent.string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd);
    int err = errno;
    ::close(dfd);
    // Some filesystems cannot fsync a directory (EINVAL); the rename is done either way.
    if (rc != 0 && err != EINVAL && err != ENOTSUP && err != EROFS)
      throw std::runtime_error("wrote '" + path_ + "', but fsync of its directory '" + dir +
                               "' failed: " + std::strerror(err));
  }
}

}  // namespace rv
