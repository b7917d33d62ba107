// png_indices.cpp: a PNG's raw 1-channel samples (palette indices or grey values), for label maps.
//
// stb_image always expands a palette to colours, but a segmentation label map stores the class
// in the palette INDEX, so this small reader does the PNG container itself: chunks (length-checked
// against the file), IHDR, the IDAT stream inflated by stb_image's zlib, the five row filters,
// bit unpacking and Adam7 interlacing. Everything is bounded by the IHDR size checked up front.
#include <array>
#include <cstring>
#include <stdexcept>

#include "data/decode_image.h"
#include "data/decode_stb.h"

namespace rv::data {

namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return uint8_t(a);
  return uint8_t(pb <= pc ? b : c);
}

// Undoes the row filters of one (sub)image of `rows` rows of `row_bytes` bytes each, in place
// in `src` (each row preceded by its filter byte), writing the raw rows to `dst`. bpp = 1 for
// the <= 8-bit single-channel images this reader accepts.
void unfilter(const uint8_t* src, uint8_t* dst, size_t rows, size_t row_bytes, const std::string& label) {
  const uint8_t* prev = nullptr;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t f = src[r * (row_bytes + 1)];
    const uint8_t* in = src + r * (row_bytes + 1) + 1;
    uint8_t* out = dst + r * row_bytes;
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i > 0 ? out[i - 1] : 0, b = prev ? prev[i] : 0, c = (prev && i > 0) ? prev[i - 1] : 0;
      switch (f) {
        case 0: out[i] = in[i]; break;
        case 1: out[i] = uint8_t(in[i] + a); break;
        case 2: out[i] = uint8_t(in[i] + b); break;
        case 3: out[i] = uint8_t(in[i] + ((a + b) >> 1)); break;
        case 4: out[i] = uint8_t(in[i] + paeth(a, b, c)); break;
        default: throw std::runtime_error(label + ": corrupt PNG: row filter type " + std::to_string(f) + " (expected 0..4)");
      }
    }
    prev = out;
  }
}

}  // namespace

Image decode_png_indices(const uint8_t* d, size_t n, const std::string& label, int64_t max_pixels) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n < 8 || std::memcmp(d, sig, 8) != 0) throw std::runtime_error(label + ": not a PNG file (bad signature)");
  uint32_t W = 0, H = 0;
  int depth = 0, ctype = -1, interlace = 0;
  bool have_ihdr = false, have_iend = false;
  std::string idat;
  size_t p = 8;
  while (p + 12 <= n) {
    const uint32_t len = be32(d + p);
    const uint8_t* type = d + p + 4;
    if (len > n - p - 12) throw std::runtime_error(label + ": truncated PNG: chunk length runs past the end of the file");
    const uint8_t* body = d + p + 8;
    if (std::memcmp(type, "IHDR", 4) == 0) {
      if (len != 13 || have_ihdr) throw std::runtime_error(label + ": corrupt PNG: bad IHDR chunk");
      W = be32(body), H = be32(body + 4), depth = body[8], ctype = body[9], interlace = body[12];
      have_ihdr = true;
      if (W == 0 || H == 0 || uint64_t(W) * H > uint64_t(max_pixels))
        throw std::runtime_error(label + ": PNG size " + std::to_string(W) + "x" + std::to_string(H) +
                                 " is empty or larger than the pixel limit");
      if (ctype != 0 && ctype != 3)
        throw std::runtime_error(label + ": decode_png_indices expects a palette or grey PNG (colour type 3 or 0), got colour type " +
                                 std::to_string(ctype));
      if (depth != 1 && depth != 2 && depth != 4 && depth != 8)
        throw std::runtime_error(label + ": decode_png_indices expects a bit depth of 1, 2, 4 or 8, got " + std::to_string(depth));
      if (body[10] != 0 || body[11] != 0 || interlace > 1)
        throw std::runtime_error(label + ": corrupt PNG: unknown compression, filter or interlace method");
    } else if (!have_ihdr) {
      throw std::runtime_error(label + ": corrupt PNG: the first chunk is not IHDR");
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      idat.append(reinterpret_cast<const char*>(body), len);
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      have_iend = true;
      break;
    }
    p += 12 + size_t(len);
  }
  if (!have_ihdr) throw std::runtime_error(label + ": truncated PNG: no IHDR chunk");
  if (idat.empty()) throw std::runtime_error(label + ": truncated PNG: no image data (IDAT)");
  (void)have_iend;  // PIL reads files whose IEND is missing when the data is complete; so do we

  // Adam7 passes (x0, y0, dx, dy); a plain image is one pass (0, 0, 1, 1).
  static const std::array<std::array<int, 4>, 7> adam7 = {
      {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}};
  std::vector<std::array<int, 4>> passes = interlace ? std::vector<std::array<int, 4>>(adam7.begin(), adam7.end())
                                                     : std::vector<std::array<int, 4>>{{0, 0, 1, 1}};
  size_t expected = 0;
  for (auto [x0, y0, dx, dy] : passes) {
    const size_t pw = W > uint32_t(x0) ? (W - x0 + dx - 1) / dx : 0, ph = H > uint32_t(y0) ? (H - y0 + dy - 1) / dy : 0;
    if (pw && ph) expected += ph * (1 + (pw * depth + 7) / 8);
  }
  const std::string raw = stb_inflate_zlib(reinterpret_cast<const uint8_t*>(idat.data()), idat.size(), expected, label);
  if (raw.size() < expected) throw std::runtime_error(label + ": truncated PNG: image data ends early");

  Image out(int(H), int(W), 1);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(raw.data());
  std::vector<uint8_t> rows;
  const int mask = (1 << depth) - 1;
  for (auto [x0, y0, dx, dy] : passes) {
    const size_t pw = W > uint32_t(x0) ? (W - x0 + dx - 1) / dx : 0, ph = H > uint32_t(y0) ? (H - y0 + dy - 1) / dy : 0;
    if (!pw || !ph) continue;
    const size_t rb = (pw * depth + 7) / 8;
    rows.resize(ph * rb);
    unfilter(src, rows.data(), ph, rb, label);
    src += ph * (rb + 1);
    for (size_t r = 0; r < ph; ++r) {
      uint8_t* dst = out.row(int(y0 + r * dy));
      const uint8_t* in = rows.data() + r * rb;
      for (size_t c = 0; c < pw; ++c) {
        // Samples are packed from the most significant bit down.
        const size_t bit = c * depth;
        dst[x0 + c * dx] = uint8_t((in[bit >> 3] >> (8 - depth - (bit & 7))) & mask);
      }
    }
  }
  return out;
}

Image read_png_indices(const std::string& path) {
  const std::string b = read_file_bytes(path);
  return decode_png_indices(reinterpret_cast<const uint8_t*>(b.data()), b.size(), path);
}

}  // namespace rv::data
