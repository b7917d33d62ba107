// image_encode.cpp: JPEG / PNG writing through stb_image_write when present, and a small built-in
// grey / RGB PNG writer (stored deflate) so that label maps and overlays can always be written.
#include "data/image_encode.h"

#include <array>
#include <stdexcept>

#ifdef RV_HAVE_STB_IMAGE_WRITE
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // private to this file: no clash with another copy of stb
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop
#endif

namespace rv::data {

namespace {

void check_size(const char* op, int64_t h, int64_t w) {
  if (h < 1 || w < 1 || h > 65535 || w > 65535)
    throw std::invalid_argument(std::string(op) + ": expected 1..65535 x 1..65535 pixels, got " + std::to_string(h) +
                                "x" + std::to_string(w));
}

#ifdef RV_HAVE_STB_IMAGE_WRITE
void append(void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size)); }
#endif

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put_be32(out, uint32_t(data.size()));
  const std::string td = std::string(type, 4) + data;
  out += td;
  put_be32(out, crc32(reinterpret_cast<const uint8_t*>(td.data()), td.size(), 0));
}

}  // namespace

bool have_jpeg_encoder() {
#ifdef RV_HAVE_STB_IMAGE_WRITE
  return true;
#else
  return false;
#endif
}

const char* jpeg_encoder_name() { return have_jpeg_encoder() ? "stb_image_write" : "none"; }

const char* png_encoder_name() {
#ifdef RV_HAVE_STB_IMAGE_WRITE
  return "stb_image_write";
#else
  return "built-in (stored deflate)";
#endif
}

std::string encode_rgb_jpeg(const uint8_t* rgb, int64_t height, int64_t width, int quality) {
  check_size("encode_rgb_jpeg", height, width);
  if (quality < 1 || quality > 100)
    throw std::invalid_argument("encode_rgb_jpeg: quality: expected 1..100, got " + std::to_string(quality));
#ifdef RV_HAVE_STB_IMAGE_WRITE
  std::string out;
  if (!stbi_write_jpg_to_func(append, &out, int(width), int(height), 3, rgb, quality))
    throw std::runtime_error("encode_rgb_jpeg: stb_image_write failed");
  return out;
#else
  (void)rgb;
  throw std::runtime_error("encode_rgb_jpeg: built without a JPEG encoder: install libstb-dev (stb_image_write.h) and reconfigure");
#endif
}

namespace {

// The built-in writer for 1 (grey, colour type 0) or 3 (RGB, colour type 2) channels.
std::string encode_png_stored(const char* op, const uint8_t* pixels, int64_t height, int64_t width, int channels) {
  check_size(op, height, width);
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_be32(ihdr, uint32_t(width));
  put_be32(ihdr, uint32_t(height));
  ihdr.push_back('\x08');                                 // 8 bits per sample
  ihdr.push_back(channels == 3 ? '\x02' : '\x00');        // colour type: RGB or grey
  ihdr += std::string("\x00\x00\x00", 3);                // deflate, filter set 0, no interlace
  chunk(out, "IHDR", ihdr);
  // Raw scanlines, each led by filter type 0 (None).
  const int64_t row = width * channels;
  std::string raw;
  raw.reserve(size_t(height * (row + 1)));
  for (int64_t y = 0; y < height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(pixels + y * row), size_t(row));
  }
  // zlib stream: header (deflate, 32K window, no dict, check bits), stored blocks, Adler-32.
  std::string z = "\x78\x01";
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    const size_t len = std::min<size_t>(65535, raw.size() - pos);
    const bool last = pos + len == raw.size();
    z.push_back(char(last ? 1 : 0));
    z.push_back(char(len & 0xff));
    z.push_back(char(len >> 8));
    z.push_back(char(~len & 0xff));
    z.push_back(char((~len >> 8) & 0xff));
    z.append(raw, pos, len);
    pos += len;
    if (last) break;
  }
  put_be32(z, (b << 16) | a);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

}  // namespace

std::string encode_grey_png_stored(const uint8_t* grey, int64_t height, int64_t width) {
  return encode_png_stored("encode_grey_png", grey, height, width, 1);
}

std::string encode_rgb_png_stored(const uint8_t* rgb, int64_t height, int64_t width) {
  return encode_png_stored("encode_rgb_png", rgb, height, width, 3);
}

std::string encode_grey_png(const uint8_t* grey, int64_t height, int64_t width) {
#ifdef RV_HAVE_STB_IMAGE_WRITE
  check_size("encode_grey_png", height, width);
  std::string out;
  if (!stbi_write_png_to_func(append, &out, int(width), int(height), 1, grey, int(width)))
    throw std::runtime_error("encode_grey_png: stb_image_write failed");
  return out;
#else
  return encode_grey_png_stored(grey, height, width);
#endif
}

std::string encode_rgb_png(const uint8_t* rgb, int64_t height, int64_t width) {
#ifdef RV_HAVE_STB_IMAGE_WRITE
  check_size("encode_rgb_png", height, width);
  std::string out;
  if (!stbi_write_png_to_func(append, &out, int(width), int(height), 3, rgb, int(width * 3)))
    throw std::runtime_error("encode_rgb_png: stb_image_write failed");
  return out;
#else
  return encode_rgb_png_stored(rgb, height, width);
#endif
}

}  // namespace rv::data
