// image_fuzz_check.h: the properties the image fuzzers check on every input, shared by the
// libFuzzer targets (fuzz_jpeg.cpp, fuzz_png.cpp) and the CTest that replays the seed files
// without clang (tests/unit/test_image_decode.cpp).
//
// For any bytes:
//   - jpeg_exif_orientation returns 1..8;
//   - peek_image / decode_image (with and without a scaled-decode request) / decode_png_indices
//     either throw std::runtime_error or return an image (anything else, a crash, a sanitizer
//     report or another exception type, is a bug);
//   - decode_jpeg_crop of a box inside the peeked size (full, half and 5/8 scale) throws
//     std::runtime_error or returns exactly that box;
//   - a decoded image is non-empty, has the channel count asked for and exactly H * W * C
//     bytes, all readable; a full-size decode has the size peek_image announced.
// Returns "" when all holds, else what went wrong.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "data/decode_image.h"
#include "data/decode_jpeg.h"
#include "data/decode_jpeg_roi.h"
#include "data/exif.h"

namespace rv::fuzz {

// Images above 4M pixels are refused in fuzzing (DecodeOptions::max_pixels): a 100-byte input
// may claim a 16k x 16k GIF, and allocating that is a cost, not a bug, that would only slow the
// fuzzer down (or trip its memory limit).
inline constexpr int64_t kFuzzMaxPixels = int64_t(1) << 22;

inline std::string image_check_image(const data::Image& im, int channels, const char* what) {
  if (im.empty()) return std::string(what) + " returned an empty image";
  if (im.channels != channels) return std::string(what) + " returned " + std::to_string(im.channels) + " channels";
  if (im.pixels.size() != size_t(im.height) * im.width * im.channels) return std::string(what) + ": pixel buffer size mismatch";
  unsigned sum = 0;
  for (uint8_t v : im.pixels) sum += v;  // every byte readable (ASan)
  (void)sum;
  return "";
}

// JPEG (and any other decodable format): sniffing, EXIF, header peek, full and scaled decode.
inline std::string image_check_decode(const uint8_t* data, size_t size) {
  const int o = data::jpeg_exif_orientation(data, size);
  if (o < 1 || o > 8) return "jpeg_exif_orientation returned " + std::to_string(o);
  data::ImageInfo info;
  bool peeked = false;
  try {
    info = data::peek_image(data, size, "<fuzz>");
    peeked = true;
  } catch (const std::runtime_error&) {
  }
  try {
    data::Image im = data::decode_image(data, size, "<fuzz>", {.max_pixels = kFuzzMaxPixels});
    if (auto p = image_check_image(im, 3, "decode_image"); !p.empty()) return p;
    if (peeked && (im.height != info.height || im.width != info.width))
      return "decode_image gave " + std::to_string(im.height) + "x" + std::to_string(im.width) + ", peek_image said " +
             std::to_string(info.height) + "x" + std::to_string(info.width);
  } catch (const std::runtime_error&) {
  }
  try {
    data::Image im = data::decode_image(data, size, "<fuzz>", {.min_height = 8, .min_width = 8, .channels = 1, .max_pixels = kFuzzMaxPixels});
    if (auto p = image_check_image(im, 1, "decode_image(scaled, grey)"); !p.empty()) return p;
  } catch (const std::runtime_error&) {
  }
  // The region decode (libjpeg crop / skip scanlines): a box inside the announced size, at full
  // and half scale, is an error or exactly that box.
  if (peeked && info.format == data::ImageFormat::jpeg) {
    const int scales[][2] = {{1, 1}, {1, 2}, {5, 8}};  // num / denom (5/8: a plain-C scaled IDCT)
    for (const auto& [num, d] : scales) {
      const int m = num * 8 / d;
      const int H = data::jpeg_scaled_size(info.height, m), W = data::jpeg_scaled_size(info.width, m);
      const int top = H / 4, left = W / 3, h = std::max(1, H / 2), w = std::max(1, W / 3);
      const data::DecodeOptions opt{.scale_num = num, .max_pixels = kFuzzMaxPixels};
      try {
        data::Image im = data::decode_jpeg_crop(data, size, "<fuzz>", top, left, h, w, d, opt);
        if (auto p = image_check_image(im, 3, "decode_jpeg_crop"); !p.empty()) return p;
        if (im.height != h || im.width != w)
          return "decode_jpeg_crop gave " + std::to_string(im.height) + "x" + std::to_string(im.width) + " for a " +
                 std::to_string(h) + "x" + std::to_string(w) + " box";
      } catch (const std::runtime_error&) {
      } catch (const std::invalid_argument& e) {
        return std::string("decode_jpeg_crop refused a box inside the peeked size: ") + e.what();
      }
    }
  }
  return "";
}

// PNG: the stb path and the palette-index reader.
inline std::string image_check_png(const uint8_t* data, size_t size) {
  if (auto p = image_check_decode(data, size); !p.empty()) return p;
  try {
    data::Image im = data::decode_png_indices(data, size, "<fuzz>", kFuzzMaxPixels);
    if (auto p = image_check_image(im, 1, "decode_png_indices"); !p.empty()) return p;
  } catch (const std::runtime_error&) {
  }
  return "";
}

}  // namespace rv::fuzz
