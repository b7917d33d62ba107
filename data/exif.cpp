// exif.cpp: bounded parser for the EXIF Orientation tag, and the transposes it asks for.
#include "data/exif.h"

#include <utility>

namespace rv::data {

namespace {

// Reads a 16 / 32-bit integer in the TIFF's byte order; the caller has checked the bounds.
uint32_t rd16(const uint8_t* p, bool le) { return le ? uint32_t(p[0] | p[1] << 8) : uint32_t(p[0] << 8 | p[1]); }
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
            : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

int tiff_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  if (rd16(t + 2, le) != 42) return 1;
  const uint64_t ifd = rd32(t + 4, le);
  if (ifd + 2 > n) return 1;
  const uint64_t count = rd16(t + ifd, le);
  for (uint64_t i = 0; i < count && i < uint64_t(kMaxExifEntries); ++i) {
    const uint64_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) return 1;
    if (rd16(t + e, le) != 0x0112) continue;
    // Orientation is a SHORT (type 3), count 1, stored in the first 2 bytes of the value field.
    if (rd16(t + e + 2, le) != 3 || rd32(t + e + 4, le) != 1) return 1;
    const uint32_t o = rd16(t + e + 8, le);
    return (o >= 1 && o <= 8) ? int(o) : 1;
  }
  return 1;
}

int jpeg_exif_orientation(const uint8_t* d, size_t n) {
  if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 1;
  size_t p = 2;
  while (p + 4 <= n) {
    if (d[p] != 0xFF) return 1;            // lost sync: not a well-formed header
    const uint8_t marker = d[p + 1];
    if (marker == 0xFF) { ++p; continue; }  // fill byte
    if (marker == 0xDA || marker == 0xD9) return 1;  // start of scan / end: no EXIF before the data
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { p += 2; continue; }  // no length
    const size_t len = size_t(d[p + 2]) << 8 | d[p + 3];  // includes its own 2 bytes
    if (len < 2 || p + 2 + len > n) return 1;
    const uint8_t* seg = d + p + 4;
    const size_t seg_len = len - 2;
    if (marker == 0xE1 && seg_len >= 6 && seg[0] == 'E' && seg[1] == 'x' && seg[2] == 'i' && seg[3] == 'f' &&
        seg[4] == 0 && seg[5] == 0)
      return tiff_orientation(seg + 6, seg_len - 6);
    p += 2 + len;
  }
  return 1;
}

Image apply_orientation(Image im, int o) {
  if (o < 2 || o > 8 || im.empty()) return im;
  const int H = im.height, W = im.width, C = im.channels;
  const bool swap = orientation_swaps_axes(o);
  Image out(swap ? W : H, swap ? H : W, C);
  // For each output pixel (y, x): the source pixel, written out per case so each is checkable
  // against PIL's Image.transpose names.
  for (int y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      int sy = y, sx = x;
      switch (o) {
        case 2: sx = W - 1 - x; break;                      // FLIP_LEFT_RIGHT
        case 3: sy = H - 1 - y; sx = W - 1 - x; break;      // ROTATE_180
        case 4: sy = H - 1 - y; break;                      // FLIP_TOP_BOTTOM
        case 5: sy = x; sx = y; break;                      // TRANSPOSE
        case 6: sy = H - 1 - x; sx = y; break;              // ROTATE_270 (90 clockwise)
        case 7: sy = H - 1 - x; sx = W - 1 - y; break;      // TRANSVERSE
        case 8: sy = x; sx = W - 1 - y; break;              // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* src = im.pixels.data() + (size_t(sy) * W + sx) * C;
      for (int c = 0; c < C; ++c) dst[x * C + c] = src[c];
    }
  }
  return out;
}

}  // namespace rv::data
