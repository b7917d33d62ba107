// image_encode.h: 8-bit images -> JPEG / PNG bytes, for synthetic data sets (`ropevit
// make-scenes` writes real COCO / ADE20k files with them).
//
//   std::string jpg = encode_rgb_jpeg(rgb, H, W, 90);   // (H, W, 3) packed
//   std::string png = encode_grey_png(labels, H, W);    // (H, W): an 8-bit grey label map
//   std::string png = encode_rgb_png(rgb, H, W);        // (H, W, 3): a picture (overlays)
//
// JPEG: stb_image_write (Debian libstb-dev, header only) when it was found at configure time;
// without it, an error naming the package (the GPU machine lacks it). jpeg_encoder_name() says
// which is in use, for the command's report.
// PNG: stb_image_write when found, else our own writer: colour type 0 (grey) or 2 (RGB), 8 bits,
// filter None, the image data in "stored" (uncompressed) deflate blocks with CRC-32 and Adler-32;
// both are valid PNG and decode to the same values (label maps must be lossless, hence PNG).
#pragma once
#include <cstdint>
#include <string>

namespace rv::data {

bool have_jpeg_encoder();
const char* jpeg_encoder_name();  // "stb_image_write" or "none"
const char* png_encoder_name();   // "stb_image_write" or "built-in (stored deflate)"

// rgb: (H, W, 3) packed; quality 1..100. Throws std::runtime_error without an encoder.
std::string encode_rgb_jpeg(const uint8_t* rgb, int64_t height, int64_t width, int quality = 90);
// grey: (H, W) packed.
std::string encode_grey_png(const uint8_t* grey, int64_t height, int64_t width);
// rgb: (H, W, 3) packed; lossless like the grey one.
std::string encode_rgb_png(const uint8_t* rgb, int64_t height, int64_t width);
// The built-in writers, whatever was found (tests compare them with the other).
std::string encode_grey_png_stored(const uint8_t* grey, int64_t height, int64_t width);
std::string encode_rgb_png_stored(const uint8_t* rgb, int64_t height, int64_t width);

}  // namespace rv::data
