// image.h: data::Image, an 8-bit image in HWC order (rows of interleaved channels), the currency
// of decoding and of every uint8 transform (resize, crops, flips, colour ops) before an image
// becomes a normalised float (C, H, W) tensor.
//
//   pixel (y, x), channel c  ->  pixels[(y * W + x) * C + c]
//
// C is 1 (grey / label indices) or 3 (RGB). A plain struct and not a Tensor: transforms run per
// sample on worker threads, outside autograd, and want a tight packed buffer they own.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rv::data {

// Decoders refuse larger images (a hostile header can claim 65535 x 65535 x 4 bytes = 16 GiB).
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 28;  // 268M pixels, e.g. 16384 x 16384

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C), packed

  Image() = default;
  Image(int h, int w, int c, uint8_t fill = 0) : height(h), width(w), channels(c), pixels(size_t(h) * w * c, fill) {
    if (h < 0 || w < 0 || (c != 1 && c != 3))
      throw std::invalid_argument("Image: expected H, W >= 0 and 1 or 3 channels, got " + std::to_string(h) + "x" +
                                  std::to_string(w) + "x" + std::to_string(c));
  }
  bool empty() const { return height == 0 || width == 0; }
  uint8_t* row(int y) { return pixels.data() + size_t(y) * width * channels; }
  const uint8_t* row(int y) const { return pixels.data() + size_t(y) * width * channels; }
  uint8_t& at(int y, int x, int c) { return pixels[(size_t(y) * width + x) * channels + c]; }
  uint8_t at(int y, int x, int c) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

}  // namespace rv::data
