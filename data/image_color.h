// image_color.h: colour-space conversions on 8-bit images, with PIL's integer arithmetic so the
// pixels match Image.convert():
//   RGB -> L    L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16   (ITU-R 601-2 luma, 16-bit fixed point)
//   L -> RGB    R = G = B = L
//   CMYK -> RGB R = (255 - K) - (C * (255 - K)) / 255, with PIL's rounded divide by 255
#pragma once
#include <cstdint>

#include "data/image.h"

namespace rv::data {

inline uint8_t pil_luma(uint8_t r, uint8_t g, uint8_t b) {
  return uint8_t((uint32_t(r) * 19595 + uint32_t(g) * 38470 + uint32_t(b) * 7471 + 0x8000) >> 16);
}
// a * b / 255 rounded, as PIL's MULDIV255 (exact for a, b in 0..255).
inline uint8_t muldiv255(int a, int b) {
  const int t = a * b + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

Image rgb_to_grey(const Image& rgb);   // 3 -> 1 channel (PIL "L")
Image grey_to_rgb(const Image& grey);  // 1 -> 3 channels
// Packed CMYK (4 bytes per pixel, H x W) -> RGB. `inverted`: Adobe JPEGs store 255 - value.
Image cmyk_to_rgb(const uint8_t* cmyk, int height, int width, bool inverted);

}  // namespace rv::data
