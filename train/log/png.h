// png.h: PNG files for the plots, written and read by our own code.
//
// Writing: 8-bit RGB (colour type 2), no interlace, filter "None" on every row. The image data
// is a zlib stream: deflate-compressed by zlib when it was found at configure time, otherwise
// "stored" deflate blocks (uncompressed, at most 65535 bytes each) with our own Adler-32;
// both are valid PNG. Every chunk ends with the CRC-32 of its type and data.
//
// Reading (for tests and tools): checks the signature, every chunk's CRC, IHDR, the chunk
// order, then inflates (stored blocks by our code, compressed ones via zlib when present)
// and undoes the five row filters. 8-bit RGB or RGBA only (alpha dropped): what we write,
// plus what other tools typically write for plots.
#pragma once
#include <string>

#include "train/log/image.h"

namespace rv::runlog {

bool png_has_zlib();                                          // compressed writing / reading available
std::string encode_png(const Image& img, bool compress = true);  // compress is ignored without zlib
// Writes via AtomicFileWriter (temp file + rename): a reader never sees half a PNG.
void write_png(const std::string& path, const Image& img);

struct PngInfo {
  int width = 0, height = 0, bit_depth = 0, color_type = 0;
  std::vector<std::string> chunks;  // chunk types in file order
};
// Throws std::runtime_error saying what is wrong (bad CRC in chunk X, bad IHDR, ...).
Image decode_png(const std::string& bytes, PngInfo* info = nullptr);

}  // namespace rv::runlog
