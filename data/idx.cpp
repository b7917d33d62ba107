// idx.cpp: the IDX reader. Plain and gzip input go through one small "byte source" interface,
// so the header and the data are validated by the same code whichever the file is; the header is
// read first and the exact data size it promises is checked (against the file size, or against
// what a gzip file of that size could hold) before any memory is allocated for the data.
#include "data/idx.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "data/gzip.h"

namespace rv::data {
namespace {

std::runtime_error idx_error(const std::string& label, const std::string& what) {
  return std::runtime_error("IDX file '" + label + "': " + what);
}

// Bytes in, one read at a time; `read` returns fewer than asked only at the end of the input.
struct ByteSource {
  virtual ~ByteSource() = default;
  virtual size_t read(void* dst, size_t n) = 0;
  virtual bool at_end() = 0;  // nothing left
};

struct PlainSource : ByteSource {
  const unsigned char* p;
  size_t left;
  PlainSource(const void* data, size_t size) : p(static_cast<const unsigned char*>(data)), left(size) {}
  size_t read(void* dst, size_t n) override {
    size_t k = std::min(n, left);
    if (k) std::memcpy(dst, p, k);
    p += k;
    left -= k;
    return k;
  }
  bool at_end() override { return left == 0; }
};

struct GzipSource : ByteSource {
  GzipStream z;
  GzipSource(const void* data, size_t size, const std::string& label) : z(data, size, label) {}
  size_t read(void* dst, size_t n) override { return z.read(dst, n); }
  bool at_end() override { return z.at_end(); }
};

uint32_t load_be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Big-endian file order -> host order, in place, for n items of `width` bytes.
void to_host_order(void* data, size_t n, size_t width) {
  if constexpr (std::endian::native == std::endian::big) return;
  auto* b = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < n; ++i, b += width)
    for (size_t lo = 0, hi = width - 1; lo < hi; ++lo, --hi) std::swap(b[lo], b[hi]);
}

std::string describe_size(bool gz, uint64_t bytes) {
  return std::to_string(bytes) + (gz ? " bytes after decompression" : " bytes");
}

}  // namespace

const char* idx_type_name(uint8_t code) {
  switch (code) {
    case 0x08: return "u8";
    case 0x09: return "i8";
    case 0x0B: return "i16";
    case 0x0C: return "i32";
    case 0x0D: return "f32";
    case 0x0E: return "f64";
    default: return nullptr;
  }
}

size_t IdxHeader::item_bytes() const {
  switch (type_code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: throw std::invalid_argument("IdxHeader::item_bytes: invalid type code " + std::to_string(type_code));
  }
}

uint64_t IdxHeader::data_bytes() const { return uint64_t(shape_numel(shape)) * item_bytes(); }

DType IdxHeader::dtype() const {
  switch (type_code) {
    case 0x08: return DType::u8;
    case 0x09: case 0x0B: case 0x0C: return DType::i32;
    case 0x0D: return DType::f32;
    case 0x0E: return DType::f64;
    default: throw std::invalid_argument("IdxHeader::dtype: invalid type code " + std::to_string(type_code));
  }
}

Tensor parse_idx(const void* data, size_t size, const std::string& label) {
  const bool gz = is_gzip(data, size);
  std::unique_ptr<ByteSource> src;
  if (gz)
    src = std::make_unique<GzipSource>(data, size, label);
  else
    src = std::make_unique<PlainSource>(data, size);

  // ---- magic: 00 00 type ndims --------------------------------------------------------------
  unsigned char magic[4];
  size_t got = src->read(magic, 4);
  if (got < 4)
    throw idx_error(label, "truncated: expected a 4-byte magic number, found " + describe_size(gz, got) + " in all");
  if (magic[0] != 0 || magic[1] != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", magic[0], magic[1], magic[2], magic[3]);
    throw idx_error(label, std::string("not an IDX file: the magic number must start with 00 00, found ") + buf);
  }
  IdxHeader h;
  h.type_code = magic[2];
  if (!idx_type_name(h.type_code)) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02x", h.type_code);
    throw idx_error(label, std::string("unknown data type code 0x") + buf +
                               " (expected 08 u8, 09 i8, 0B i16, 0C i32, 0D f32 or 0E f64)");
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > kIdxMaxDims)
    throw idx_error(label, "expected 1 to " + std::to_string(kIdxMaxDims) + " dimensions, the header says " +
                               std::to_string(ndims));

  // ---- sizes ----------------------------------------------------------------------------------
  unsigned char dims[4 * kIdxMaxDims];
  got = src->read(dims, 4 * size_t(ndims));
  if (got < 4 * size_t(ndims))
    throw idx_error(label, "truncated header: " + std::to_string(ndims) + " dimensions need " +
                               std::to_string(4 + 4 * ndims) + " header bytes, the file has " +
                               describe_size(gz, 4 + got));
  // numel * itemsize must fit in 63 bits: each size is < 2^32, so check as we multiply.
  const uint64_t limit = uint64_t(std::numeric_limits<int64_t>::max()) / 8;
  uint64_t numel = 1;
  for (int d = 0; d < ndims; ++d) {
    uint64_t n = load_be32(dims + 4 * d);
    h.shape.push_back(int64_t(n));
    if (n != 0 && numel > limit / n) {
      throw idx_error(label, "the sizes " + shape_str(h.shape) + "... describe more than 2^60 elements");
    }
    numel *= n;
  }
  const uint64_t expected = numel * h.item_bytes();
  const std::string what = std::string("shape ") + shape_str(h.shape) + " of " + idx_type_name(h.type_code) +
                           " needs " + std::to_string(expected) + " data bytes";

  // ---- the data size, checked before allocating ---------------------------------------------
  if (!gz) {
    uint64_t have = size - h.header_bytes();
    if (have < expected)
      throw idx_error(label, "truncated: " + what + " after the " + std::to_string(h.header_bytes()) +
                                 "-byte header, the file has " + std::to_string(have));
    if (have > expected)
      throw idx_error(label, what + ", but " + std::to_string(have - expected) +
                                 " more bytes follow them (a wrong header or two files joined)");
  } else if (expected > kGzipMaxRatio * uint64_t(size) + 1024) {
    throw idx_error(label, what + ", more than a gzip file of " + std::to_string(size) +
                               " bytes can hold: the header is corrupt");
  }

  // ---- the data -------------------------------------------------------------------------------
  const size_t width = h.item_bytes();
  Tensor out = empty(h.shape, h.dtype());
  // i8 and i16 are read into a scratch buffer and widened; the others land in the tensor directly.
  std::vector<unsigned char> scratch;
  void* dst = out.raw_data();
  if (width != out.itemsize()) {
    scratch.resize(expected);
    dst = scratch.data();
  }
  got = expected ? src->read(dst, expected) : 0;
  if (got < expected)
    throw idx_error(label, "truncated: " + what + ", the file has " + describe_size(gz, h.header_bytes() + got) +
                               " in all (" + std::to_string(h.header_bytes() + expected) + " expected)");
  if (!src->at_end())
    throw idx_error(label, what + ", but more bytes follow them after decompression (a wrong header or two files joined)");

  if (h.type_code == 0x09) {  // i8 -> i32
    int32_t* o = out.data<int32_t>();
    for (size_t i = 0; i < numel; ++i) o[i] = int8_t(scratch[i]);
  } else if (h.type_code == 0x0B) {  // big-endian i16 -> i32
    int32_t* o = out.data<int32_t>();
    for (size_t i = 0; i < numel; ++i) o[i] = int16_t(uint16_t(scratch[2 * i] << 8 | scratch[2 * i + 1]));
  } else if (width > 1) {
    to_host_order(dst, numel, width);
  }
  return out;
}

Tensor read_idx(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw idx_error(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (failed) throw idx_error(path, std::string("read error: ") + std::strerror(err));
  return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace rv::data
