// noise_image.h: a uint8 image of uniform noise for the image-op tests, each byte a Philox word
// of (seed, 0, byte index), so every test gets the same pixels on every machine.
#pragma once
#include <cstdint>

#include "data/image.h"
#include "engine/rng.h"

namespace rv::test {

inline data::Image noise_image(int h, int w, int c, uint64_t seed) {
  data::Image im(h, w, c);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = uint8_t(philox_word(seed, 0, i) & 0xFF);
  return im;
}

}  // namespace rv::test
