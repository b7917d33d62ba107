// gzip.h: reading gzip-compressed bytes as a stream (zlib's inflate), for files such as Debian's
// Fashion-MNIST, which ships its IDX files as .gz.
//
// A stream rather than "decompress everything": the caller reads the few header bytes first,
// learns from them how many bytes should follow, and then reads exactly that many. A hostile
// file (a "zip bomb" or a header that promises terabytes) thus never makes us allocate more than
// the header's promise, which the caller can bound before reading (kGzipMaxRatio).
//
// zlib is optional at build time (cmake/Dependencies.cmake): without it gzip_supported() is
// false and opening a GzipStream throws an error that says so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rv::data {

// True when the bytes start with the gzip magic 1f 8b.
bool is_gzip(const void* data, size_t size);
// True when this build can decompress (it was configured with zlib).
bool gzip_supported();

// Deflate cannot expand by more than 1032:1 (a 258-byte match in about 2 bits), so a gzip file
// of M bytes holds at most about 1032 * M bytes: a header that claims more is lying.
inline constexpr uint64_t kGzipMaxRatio = 1032;

class GzipStream {
 public:
  // Reads the single gzip member in [data, data + size); the bytes must outlive the stream.
  // Errors (std::runtime_error) name `label`, usually the file's path.
  GzipStream(const void* data, size_t size, std::string label);
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Fills dst with up to n bytes; returns fewer only when the compressed stream has ended.
  // Corrupt data or input that stops before the stream's end throws.
  size_t read(void* dst, size_t n);
  // True when the stream has ended: no output is left and the gzip trailer (CRC-32 and length)
  // checked out. Throws if bytes follow the end of the member (concatenated members are refused).
  bool at_end();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rv::data
