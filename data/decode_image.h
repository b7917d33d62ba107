// decode_image.h: bytes (or a file) -> data::Image, for every format a data set may hold.
//
//   Image im = read_image("n01440764/n01440764_10026.JPEG");             // RGB, EXIF-oriented
//   Image small = read_image(path, {.min_height = 256, .min_width = 256}); // JPEG: scaled decode
//   Image labels = read_png_indices("ADE_val_00000001.png");             // 1 channel, raw values
//
// The format is sniffed from the magic bytes, never the file name (one ImageNet ".JPEG" is a
// PNG). JPEG goes through TurboJPEG (data/decode_jpeg.cpp), everything else through stb_image
// (data/decode_stb.cpp); both are optional at build time, and a missing one is a run-time error
// naming the Debian package. Whatever the source (grey, CMYK, palette, 16-bit, alpha), the result
// has 3 channels (RGB) unless `channels = 1` asks for grey, as PIL's convert("RGB"/"L") gives.
// A corrupt or truncated file is a std::runtime_error naming it; it never crashes or hangs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace rv::data {

enum class ImageFormat { unknown, jpeg, png, gif, bmp, other_stb };
ImageFormat sniff_image_format(const uint8_t* data, size_t size);
const char* image_format_name(ImageFormat f);

struct DecodeOptions {
  // JPEG scaled decode (DCT scaling by 1/2, 1/4 or 1/8: several times faster): the decoder
  // picks the strongest reduction whose result is still at least min_height x min_width (after
  // EXIF orientation); 0 x 0 (the default) decodes at full size. Other formats ignore it.
  int min_height = 0, min_width = 0;
  // JPEG only: force the DCT scale 1 / scale_denom (1, 2, 4 or 8) instead of picking it from the
  // minimum size (0). The region decode (data/decode_jpeg_roi.h) and its tests use it.
  int scale_denom = 0;
  // With scale_denom = 8: the scale is scale_num / 8 (1..8), libjpeg-turbo's other M/8 scaled
  // IDCTs (3/8, 5/8, 6/8, 7/8 as well); the image is then ceil(H * M / 8) x ceil(W * M / 8).
  // Any other scale_denom needs scale_num = 1.
  int scale_num = 1;
  bool exif_orientation = true;  // apply the EXIF Orientation tag (JPEG), as ImageOps.exif_transpose
  int channels = 3;              // 3: RGB, 1: grey (ITU-R 601-2 luma, as PIL's convert("L"))
  // Larger images are refused before any pixel memory is allocated: a few hostile header bytes
  // can claim gigabytes. The fuzzers use a small limit so that every input stays cheap.
  int64_t max_pixels = kMaxImagePixels;
};

// The size an image will decode to at full scale (after EXIF orientation), read from the header
// only: what a crop needs to know before choosing the decode scale.
struct ImageInfo {
  int height = 0, width = 0;
  ImageFormat format = ImageFormat::unknown;
};
ImageInfo peek_image(const uint8_t* data, size_t size, const std::string& label, bool exif_orientation = true);

Image decode_image(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt = {});
Image read_image(const std::string& path, const DecodeOptions& opt = {});

// A PNG's raw sample values, 1 channel: palette images give the palette INDEX (VOC / ADE-style
// label maps), grey images their value. Bit depths 1, 2, 4, 8; interlaced files are accepted.
// Colour (RGB) and 16-bit PNGs are refused: they are not label maps.
Image decode_png_indices(const uint8_t* data, size_t size, const std::string& label, int64_t max_pixels = kMaxImagePixels);
Image read_png_indices(const std::string& path);

// Whole file into memory; errors name the path.
std::string read_file_bytes(const std::string& path);
// The same into `out`, reusing its capacity (a loader worker's per-thread buffer: no allocation
// per sample once it holds the largest file). A file of the size fstat reports costs one read()
// plus one that sees its end (a stream read in 8 KB steps into a growing string made ~15
// read() calls and several reallocations for a 110 KB ImageNet JPEG).
void read_file_into(const std::string& path, std::string& out);

}  // namespace rv::data
