// decode_stb.h: PNG, GIF, BMP (and stb_image's other formats) -> RGB or grey, through stb_image.
//
// 16-bit PNGs keep their high byte (as PIL's "RGB;16B" raw mode), palette PNGs are expanded to
// their RGB colours, alpha is dropped (PIL's convert("RGB") drops it too: no blending).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/decode_image.h"

namespace rv::data {

bool have_stb_decoder();  // false when built without stb_image (libstb-dev)

ImageInfo peek_stb(const uint8_t* data, size_t size, const std::string& label);
Image decode_stb(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt = {});

// zlib-wrapped deflate data -> bytes (stb_image's inflater), for the PNG index reader. At most
// `max_out` bytes are kept; more output is an error (a decompression bomb guard).
std::string stb_inflate_zlib(const uint8_t* data, size_t size, size_t max_out, const std::string& label);

}  // namespace rv::data
