// decode_image.cpp: format sniffing and the dispatch to the JPEG / stb decoders.
#include "data/decode_image.h"

#include <cstring>
#include <fstream>
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

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return std::move(ss).str();
}

Image read_image(const std::string& path, const DecodeOptions& opt) {
  const std::string b = read_file_bytes(path);
  return decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), path, opt);
}

}  // namespace rv::data
