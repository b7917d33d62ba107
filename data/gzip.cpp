// gzip.cpp: GzipStream over zlib's inflate (windowBits 16 + 15 selects the gzip wrapper, so zlib
// checks the header, the CRC-32 and the length in the trailer for us). Without zlib every entry
// point that would need it throws.
#include "data/gzip.h"

#include <cstring>
#include <stdexcept>

#ifdef RV_HAVE_ZLIB
#include <zlib.h>
#endif

namespace rv::data {

bool is_gzip(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  return size >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

#ifdef RV_HAVE_ZLIB

bool gzip_supported() { return true; }

struct GzipStream::Impl {
  z_stream z{};
  std::string label;
  bool ended = false;  // inflate returned Z_STREAM_END
  size_t input_size = 0;

  std::runtime_error error(const std::string& what) const {
    return std::runtime_error("gzip '" + label + "': " + what);
  }
};

GzipStream::GzipStream(const void* data, size_t size, std::string label) : impl_(std::make_unique<Impl>()) {
  impl_->label = std::move(label);
  impl_->input_size = size;
  // zlib's avail_in is a 32-bit uInt: a bigger input would need feeding in pieces.
  if (size > 0xFFFFFFFFull) throw impl_->error("compressed input over 4 GiB is not supported");
  impl_->z.next_in = const_cast<Bytef*>(static_cast<const Bytef*>(data));
  impl_->z.avail_in = uInt(size);
  if (inflateInit2(&impl_->z, 16 + MAX_WBITS) != Z_OK) throw impl_->error("zlib could not start inflating");
}

GzipStream::~GzipStream() {
  if (impl_) inflateEnd(&impl_->z);
}

size_t GzipStream::read(void* dst, size_t n) {
  Impl& s = *impl_;
  size_t done = 0;
  auto* out = static_cast<Bytef*>(dst);
  while (done < n && !s.ended) {
    // Ask for at most 1 GiB per call: avail_out is a 32-bit uInt too.
    size_t chunk = std::min<size_t>(n - done, size_t(1) << 30);
    s.z.next_out = out + done;
    s.z.avail_out = uInt(chunk);
    int rc = inflate(&s.z, Z_NO_FLUSH);
    done += chunk - s.z.avail_out;
    if (rc == Z_STREAM_END) {
      s.ended = true;
    } else if (rc == Z_BUF_ERROR || (rc == Z_OK && s.z.avail_out != 0 && s.z.avail_in == 0)) {
      // No progress possible: all input was consumed before the end of the stream.
      throw s.error("truncated: the compressed data ends before the end of the gzip stream (" +
                    std::to_string(s.input_size) + " bytes read)");
    } else if (rc != Z_OK) {
      throw s.error(std::string("corrupt compressed data (zlib: ") + (s.z.msg ? s.z.msg : "error " + std::to_string(rc)) +
                    ")");
    }
  }
  return done;
}

bool GzipStream::at_end() {
  Impl& s = *impl_;
  if (!s.ended) {
    // The caller read all it expected: the stream must end now, with no byte of output left.
    unsigned char probe;
    if (read(&probe, 1) != 0) return false;
  }
  if (s.z.avail_in != 0)
    throw s.error(std::to_string(s.z.avail_in) +
                  " bytes follow the end of the gzip stream (concatenated gzip members are not supported)");
  return true;
}

#else  // no zlib in this build

bool gzip_supported() { return false; }

struct GzipStream::Impl {};

GzipStream::GzipStream(const void*, size_t, std::string label) {
  throw std::runtime_error("gzip '" + label +
                           "': this build of ropevit has no zlib, so it cannot read gzip-compressed files; install "
                           "zlib1g-dev (scripts/setup does) and reconfigure, or decompress the file with gunzip");
}
GzipStream::~GzipStream() = default;
size_t GzipStream::read(void*, size_t) { return 0; }
bool GzipStream::at_end() { return true; }

#endif

}  // namespace rv::data
