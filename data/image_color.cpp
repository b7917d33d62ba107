// image_color.cpp: PIL-exact colour conversions (see image_color.h).
#include "data/image_color.h"

#include <stdexcept>

namespace rv::data {

Image rgb_to_grey(const Image& rgb) {
  if (rgb.channels != 3) throw std::invalid_argument("rgb_to_grey: expected a 3-channel image, got " + std::to_string(rgb.channels));
  Image out(rgb.height, rgb.width, 1);
  const uint8_t* s = rgb.pixels.data();
  uint8_t* d = out.pixels.data();
  const size_t n = size_t(rgb.height) * rgb.width;
  for (size_t i = 0; i < n; ++i) d[i] = pil_luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
  return out;
}

Image grey_to_rgb(const Image& grey) {
  if (grey.channels != 1) throw std::invalid_argument("grey_to_rgb: expected a 1-channel image, got " + std::to_string(grey.channels));
  Image out(grey.height, grey.width, 3);
  const uint8_t* s = grey.pixels.data();
  uint8_t* d = out.pixels.data();
  const size_t n = size_t(grey.height) * grey.width;
  for (size_t i = 0; i < n; ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i];
  return out;
}

Image cmyk_to_rgb(const uint8_t* cmyk, int height, int width, bool inverted) {
  Image out(height, width, 3);
  uint8_t* d = out.pixels.data();
  const size_t n = size_t(height) * width;
  const int flip = inverted ? 255 : 0;
  for (size_t i = 0; i < n; ++i) {
    const int c = cmyk[4 * i] ^ flip, m = cmyk[4 * i + 1] ^ flip, y = cmyk[4 * i + 2] ^ flip, k = cmyk[4 * i + 3] ^ flip;
    const int nk = 255 - k;
    d[3 * i] = uint8_t(nk - muldiv255(c, nk));
    d[3 * i + 1] = uint8_t(nk - muldiv255(m, nk));
    d[3 * i + 2] = uint8_t(nk - muldiv255(y, nk));
  }
  return out;
}

}  // namespace rv::data
