// decode_image.cpp: format sniffing and the dispatch to the JPEG / stb decoders.
#include "data/decode_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "data/decode_jpeg.h"
#include "data/decode_stb.h"

namespace rv::data {

ImageFormat sniff_image_format(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::jpeg;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::png;
  if (n >= 4 && std::memcmp(d, "GIF8", 4) == 0) return ImageFormat::gif;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return ImageFormat::bmp;
  // PNM (P5 / P6), Photoshop, TGA and PIC have weak or no magic: stb_image decides.
  if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6')) return ImageFormat::other_stb;
  if (n >= 4 && std::memcmp(d, "8BPS", 4) == 0) return ImageFormat::other_stb;
  return ImageFormat::unknown;
}

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::png: return "PNG";
    case ImageFormat::gif: return "GIF";
    case ImageFormat::bmp: return "BMP";
    case ImageFormat::other_stb: return "PNM/PSD";
    default: return "unknown";
  }
}

namespace {

[[noreturn]] void unknown_format(const uint8_t* d, size_t n, const std::string& label) {
  std::ostringstream os;
  os << label << ": not an image ropevit can decode (expected JPEG, PNG, GIF, BMP, PNM or PSD magic bytes; ";
  if (n == 0) {
    os << "the file is empty)";
  } else {
    os << "starts with";
    for (size_t i = 0; i < n && i < 8; ++i) os << ' ' << std::hex << int(d[i]);
    os << ")";
  }
  throw std::runtime_error(os.str());
}

}  // namespace

ImageInfo peek_image(const uint8_t* data, size_t size, const std::string& label, bool exif_orientation) {
  const ImageFormat f = sniff_image_format(data, size);
  if (f == ImageFormat::jpeg) return peek_jpeg(data, size, label, exif_orientation);
  if (f == ImageFormat::unknown) unknown_format(data, size, label);
  return peek_stb(data, size, label);
}

Image decode_image(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt) {
  const ImageFormat f = sniff_image_format(data, size);
  if (f == ImageFormat::jpeg) return decode_jpeg(data, size, label, opt);
  if (f == ImageFormat::unknown) unknown_format(data, size, label);
  return decode_stb(data, size, label, opt);
}

namespace {

// read() until n bytes or the end of the file; the count read, or -1 on an error (errno set).
ssize_t read_fully(int fd, char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += size_t(r);
  }
  return ssize_t(got);
}

}  // namespace

void read_file_into(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open the file for reading (" + std::strerror(errno) + ")");
  auto fail = [&]() {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(path + ": read error (" + std::strerror(e) + ")");
  };
  // The size fstat reports is a hint: a file that grows meanwhile (or a pipe, size 0) is still
  // read to its end, and one that shrinks is cut where its end came.
  struct stat st {};
  const size_t hint = ::fstat(fd, &st) == 0 && st.st_size > 0 ? size_t(st.st_size) : 0;
  out.resize(hint);
  const ssize_t got = read_fully(fd, out.data(), hint);
  if (got < 0) fail();
  if (size_t(got) < hint) {
    out.resize(size_t(got));
  } else {
    char more[16384];  // usually one read() that returns 0: the end
    for (;;) {
      const ssize_t r = read_fully(fd, more, sizeof more);
      if (r < 0) fail();
      if (r == 0) break;
      out.append(more, size_t(r));
    }
  }
  ::close(fd);
}

std::string read_file_bytes(const std::string& path) {
  std::string out;
  read_file_into(path, out);
  return out;
}

Image read_image(const std::string& path, const DecodeOptions& opt) {
  const std::string b = read_file_bytes(path);
  return decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), path, opt);
}

}  // namespace rv::data
