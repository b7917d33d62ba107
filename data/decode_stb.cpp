// decode_stb.cpp: stb_image decoding (the single-file library is compiled here, once), or a
// clear error when ropevit was built without it.
#include "data/decode_stb.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "data/image_color.h"

#if RV_HAVE_STB_IMAGE
// Memory input only (files are read by read_file_bytes), and stb's own size guard at our limit.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS (1 << 16)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
// stb_image calls memcpy(dst, src, 0) with a null dst for an empty PNG data chunk: formally
// undefined, harmless in practice, and not ours to fix; the fuzz build's UBSan ignores that one
// check inside stb (every other check, and ASan, still apply).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("nonnull-attribute"))), apply_to = function)
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace rv::data {

#if !RV_HAVE_STB_IMAGE

bool have_stb_decoder() { return false; }
[[noreturn]] static void no_stb(const std::string& label) {
  throw std::runtime_error(label + ": cannot decode a PNG / GIF / BMP: ropevit was built without stb_image "
                           "(install Debian's libstb-dev, e.g. with scripts/setup, and re-run cmake)");
}
ImageInfo peek_stb(const uint8_t*, size_t, const std::string& label) { no_stb(label); }
Image decode_stb(const uint8_t*, size_t, const std::string& label, const DecodeOptions&) { no_stb(label); }
std::string stb_inflate_zlib(const uint8_t*, size_t, size_t, const std::string& label) { no_stb(label); }

#else

bool have_stb_decoder() { return true; }

namespace {

int checked_len(size_t size, const std::string& label) {
  if (size > size_t(0x7FFFFFFF)) throw std::runtime_error(label + ": image file larger than 2 GiB");
  return int(size);
}

// A PNG's chunk lengths must fit in the file. stb_image reserves memory for an IDAT chunk from
// its declared length before reading it, so a 200-byte file claiming a 2 GB chunk would cost
// 2 GB (found by fuzz_png); checking the chain of lengths first also gives a clear error for a
// truncated file.
void check_png_chunks(const uint8_t* d, size_t n, const std::string& label) {
  size_t p = 8;
  while (p + 8 <= n) {
    const uint64_t len = uint64_t(d[p]) << 24 | uint64_t(d[p + 1]) << 16 | uint64_t(d[p + 2]) << 8 | d[p + 3];
    if (len > n - p - 8 || n - p - 8 - len < 4)
      throw std::runtime_error(label + ": corrupt or truncated PNG (a chunk runs past the end of the file)");
    if (std::memcmp(d + p + 4, "IEND", 4) == 0) return;
    p += 12 + len;
  }
}

}  // namespace

ImageInfo peek_stb(const uint8_t* data, size_t size, const std::string& label) {
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(data, checked_len(size, label), &w, &h, &c))
    throw std::runtime_error(label + ": not a readable image (" + stbi_failure_reason() + ")");
  return {h, w, sniff_image_format(data, size)};
}

Image decode_stb(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt) {
  if (opt.channels != 1 && opt.channels != 3)
    throw std::invalid_argument(label + ": decode_stb: channels must be 1 or 3, got " + std::to_string(opt.channels));
  const int len = checked_len(size, label);
  if (sniff_image_format(data, size) == ImageFormat::png) check_png_chunks(data, size, label);
  int w = 0, h = 0, file_c = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &file_c))
    throw std::runtime_error(label + ": not a readable image (" + stbi_failure_reason() + ")");
  if (w <= 0 || h <= 0 || int64_t(w) * h > opt.max_pixels)
    throw std::runtime_error(label + ": image size " + std::to_string(w) + "x" + std::to_string(h) +
                             " is empty or larger than the pixel limit");
  // Grey sources decode as grey (no conversion); colour ones as RGB, then PIL's luma if grey is
  // wanted (stb's own RGB -> grey weights differ from PIL's).
  const bool grey_src = file_c <= 2;
  const int want = (grey_src && opt.channels == 1) ? 1 : 3;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &w, &h, &file_c, want), stbi_image_free);
  if (!px) throw std::runtime_error(label + ": corrupt or truncated image (" + stbi_failure_reason() + ")");
  Image im(h, w, want);
  std::memcpy(im.pixels.data(), px.get(), im.pixels.size());
  if (opt.channels == 1 && want == 3) im = rgb_to_grey(im);
  return im;
}

std::string stb_inflate_zlib(const uint8_t* data, size_t size, size_t max_out, const std::string& label) {
  int out_len = 0;
  const int guess = int(std::min<size_t>(max_out + 1, size_t(64) << 20));
  std::unique_ptr<char, void (*)(void*)> out(
      stbi_zlib_decode_malloc_guesssize_headerflag(reinterpret_cast<const char*>(data), checked_len(size, label),
                                                   guess > 0 ? guess : 1, &out_len, 1),
      std::free);
  if (!out) throw std::runtime_error(label + ": corrupt or truncated PNG image data (" + stbi_failure_reason() + ")");
  if (size_t(out_len) > max_out) throw std::runtime_error(label + ": PNG image data inflates to more bytes than the image holds");
  return std::string(out.get(), size_t(out_len));
}

#endif

}  // namespace rv::data
