// png.cpp: PNG chunks, the zlib stream (stored blocks or zlib's deflate), row filters.
#include "train/log/png.h"

#include <cstring>
#include <stdexcept>

#include "engine/io/atomic_file.h"
#include "train/log/crc.h"

#if defined(RV_HAVE_ZLIB)
#include <zlib.h>
#endif

namespace rv::runlog {

namespace {

const char kSignature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};

void put_be32(std::string& out, uint32_t v) {
  out += char(v >> 24), out += char(v >> 16), out += char(v >> 8), out += char(v);
}
uint32_t get_be32(const std::string& s, size_t pos) {
  auto b = [&](size_t i) { return uint32_t(uint8_t(s[pos + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_be32(out, uint32_t(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_be32(out, crc32(body.data(), body.size()));  // the CRC covers type and data, not the length
}

// A zlib stream of stored deflate blocks: header 78 01, blocks of
// [BFINAL/BTYPE=00 byte, LEN u16 LE, ~LEN u16 LE, bytes], then Adler-32 big-endian.
std::string zlib_stored(const std::string& raw) {
  std::string z = "\x78\x01";
  size_t pos = 0;
  do {
    size_t n = std::min<size_t>(raw.size() - pos, 65535);
    bool last = pos + n == raw.size();
    z += char(last ? 1 : 0);
    z += char(n & 0xFF), z += char(n >> 8);
    z += char(~n & 0xFF), z += char((~n >> 8) & 0xFF);
    z.append(raw, pos, n);
    pos += n;
  } while (pos < raw.size());
  put_be32(z, adler32(raw.data(), raw.size()));
  return z;
}

// Inflates a zlib stream made only of stored blocks; returns false at the first compressed
// block (the caller then needs zlib).
bool unzlib_stored(const std::string& z, std::string& raw) {
  if (z.size() < 6 || (uint8_t(z[0]) & 0x0F) != 8 || ((uint8_t(z[0]) << 8) | uint8_t(z[1])) % 31 != 0)
    throw std::runtime_error("PNG: the image data is not a zlib stream (bad header)");
  size_t pos = 2;
  bool last = false;
  while (!last) {
    if (pos >= z.size()) throw std::runtime_error("PNG: the image data ends inside a deflate block");
    uint8_t head = uint8_t(z[pos]);
    last = head & 1;
    if (((head >> 1) & 3) != 0) return false;
    if (pos + 5 > z.size()) throw std::runtime_error("PNG: the image data ends inside a deflate block");
    size_t n = uint8_t(z[pos + 1]) | (size_t(uint8_t(z[pos + 2])) << 8);
    size_t nn = uint8_t(z[pos + 3]) | (size_t(uint8_t(z[pos + 4])) << 8);
    if ((n ^ 0xFFFF) != nn) throw std::runtime_error("PNG: a stored deflate block's LEN and NLEN disagree");
    if (pos + 5 + n > z.size()) throw std::runtime_error("PNG: a stored deflate block runs past the data");
    raw.append(z, pos + 5, n);
    pos += 5 + n;
  }
  if (pos + 4 > z.size() || get_be32(z, pos) != adler32(raw.data(), raw.size()))
    throw std::runtime_error("PNG: the zlib Adler-32 check of the image data fails");
  return true;
}

uint8_t paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return uint8_t(pa <= pb && pa <= pc ? a : (pb <= pc ? b : c));
}

}  // namespace

bool png_has_zlib() {
#if defined(RV_HAVE_ZLIB)
  return true;
#else
  return false;
#endif
}

std::string encode_png(const Image& img, bool compress) {
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * size_t(img.height) * 3)
    throw std::invalid_argument("encode_png: the image is empty or its pixel buffer does not match its size");
  // Scanlines: a filter-type byte (0 = None) then the row's RGB bytes. Plots are mostly flat
  // colour, which deflate compresses well without the other filters.
  const size_t row = size_t(img.width) * 3;
  std::string raw;
  raw.reserve((row + 1) * size_t(img.height));
  for (int y = 0; y < img.height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(&img.rgb[size_t(y) * row]), row);
  }
  std::string z;
#if defined(RV_HAVE_ZLIB)
  if (compress) {
    uLongf n = compressBound(uLong(raw.size()));
    z.resize(n);
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 6) != Z_OK)
      throw std::runtime_error("encode_png: zlib compress2 failed");
    z.resize(n);
  }
#endif
  if (z.empty()) z = zlib_stored(raw);

  std::string out(kSignature, 8), ihdr;
  put_be32(ihdr, uint32_t(img.width));
  put_be32(ihdr, uint32_t(img.height));
  ihdr += char(8);  // bit depth
  ihdr += char(2);  // colour type: RGB
  ihdr += char(0), ihdr += char(0), ihdr += char(0);  // deflate, adaptive filtering, no interlace
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string& path, const Image& img) {
  std::string bytes = encode_png(img);
  AtomicFileWriter w(path);
  w.write(bytes.data(), bytes.size());
  w.commit();
}

Image decode_png(const std::string& s, PngInfo* info_out) {
  if (s.size() < 8 || std::memcmp(s.data(), kSignature, 8) != 0) throw std::runtime_error("PNG: bad signature");
  PngInfo info;
  std::string z;
  size_t pos = 8;
  bool ended = false;
  while (!ended) {
    if (pos + 12 > s.size()) throw std::runtime_error("PNG: the file ends before IEND");
    uint32_t n = get_be32(s, pos);
    if (n > s.size() - pos - 12) throw std::runtime_error("PNG: a chunk runs past the end of the file");
    std::string type = s.substr(pos + 4, 4);
    if (crc32(s.data() + pos + 4, 4 + n) != get_be32(s, pos + 8 + n))
      throw std::runtime_error("PNG: bad CRC in chunk " + type + " at byte " + std::to_string(pos));
    std::string data = s.substr(pos + 8, n);
    if (info.chunks.empty() && type != "IHDR") throw std::runtime_error("PNG: the first chunk is " + type + ", not IHDR");
    info.chunks.push_back(type);
    if (type == "IHDR") {
      if (n != 13) throw std::runtime_error("PNG: IHDR has " + std::to_string(n) + " bytes, not 13");
      info.width = int(get_be32(data, 0));
      info.height = int(get_be32(data, 4));
      info.bit_depth = uint8_t(data[8]);
      info.color_type = uint8_t(data[9]);
      if (info.width <= 0 || info.height <= 0 || uint8_t(data[10]) != 0 || uint8_t(data[11]) != 0)
        throw std::runtime_error("PNG: bad IHDR (size, compression or filter method)");
      if (info.bit_depth != 8 || (info.color_type != 2 && info.color_type != 6) || uint8_t(data[12]) != 0)
        throw std::runtime_error("PNG: only 8-bit RGB/RGBA, non-interlaced images are read (got bit depth " +
                                 std::to_string(info.bit_depth) + ", colour type " + std::to_string(info.color_type) + ")");
    } else if (type == "IDAT") {
      z += data;
    } else if (type == "IEND") {
      ended = true;
    }
    pos += 12 + n;
  }
  std::string raw;
  if (!unzlib_stored(z, raw)) {
#if defined(RV_HAVE_ZLIB)
    raw.clear();
    uLongf want = uLongf(info.height) * (uLongf(info.width) * (info.color_type == 6 ? 4 : 3) + 1);
    raw.resize(want);
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &want, reinterpret_cast<const Bytef*>(z.data()), uLong(z.size())) != Z_OK)
      throw std::runtime_error("PNG: zlib cannot inflate the image data");
    raw.resize(want);
#else
    throw std::runtime_error("PNG: the image data is deflate-compressed, and this build has no zlib to inflate it");
#endif
  }
  const int bpp = info.color_type == 6 ? 4 : 3;
  const size_t row = size_t(info.width) * bpp;
  if (raw.size() != (row + 1) * size_t(info.height))
    throw std::runtime_error("PNG: the image data has " + std::to_string(raw.size()) + " bytes, expected " +
                             std::to_string((row + 1) * size_t(info.height)));
  std::vector<uint8_t> prev(row, 0), cur(row);
  Image img(info.width, info.height);
  for (int y = 0; y < info.height; ++y) {
    const auto* line = reinterpret_cast<const uint8_t*>(raw.data()) + size_t(y) * (row + 1);
    uint8_t f = line[0];
    for (size_t i = 0; i < row; ++i) {
      int a = i >= size_t(bpp) ? cur[i - bpp] : 0, b = prev[i], c = i >= size_t(bpp) ? prev[i - bpp] : 0;
      uint8_t x = line[1 + i];
      switch (f) {
        case 0: cur[i] = x; break;
        case 1: cur[i] = uint8_t(x + a); break;
        case 2: cur[i] = uint8_t(x + b); break;
        case 3: cur[i] = uint8_t(x + (a + b) / 2); break;
        case 4: cur[i] = uint8_t(x + paeth(a, b, c)); break;
        default: throw std::runtime_error("PNG: unknown row filter " + std::to_string(f) + " in row " + std::to_string(y));
      }
    }
    for (int x = 0; x < info.width; ++x)
      img.set(x, y, {cur[size_t(x) * bpp], cur[size_t(x) * bpp + 1], cur[size_t(x) * bpp + 2]});
    std::swap(prev, cur);
  }
  if (info_out) *info_out = info;
  return img;
}

}  // namespace rv::runlog
