// image.cpp: the raster primitives of image.h.
#include "train/log/image.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace rv::runlog {

Image::Image(int w, int h, Color fill) : width(w), height(h) {
  if (w <= 0 || h <= 0) throw std::invalid_argument("Image: size must be positive, got " + std::to_string(w) + "x" + std::to_string(h));
  rgb.resize(size_t(w) * size_t(h) * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = fill.r, rgb[i + 1] = fill.g, rgb[i + 2] = fill.b;
}

Color Image::at(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height)
    throw std::out_of_range("Image::at(" + std::to_string(x) + ", " + std::to_string(y) + ") outside " +
                            std::to_string(width) + "x" + std::to_string(height));
  const uint8_t* p = &rgb[(size_t(y) * size_t(width) + size_t(x)) * 3];
  return {p[0], p[1], p[2]};
}

void fill_rect(Image& img, int x0, int y0, int x1, int y1, Color c) {
  if (x0 > x1) std::swap(x0, x1);
  if (y0 > y1) std::swap(y0, y1);
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width - 1), y1 = std::min(y1, img.height - 1);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) img.set(x, y, c);
}

void draw_rect(Image& img, int x0, int y0, int x1, int y1, Color c) {
  draw_line(img, x0, y0, x1, y0, c);
  draw_line(img, x1, y0, x1, y1, c);
  draw_line(img, x1, y1, x0, y1, c);
  draw_line(img, x0, y1, x0, y0, c);
}

void draw_line(Image& img, int x0, int y0, int x1, int y1, Color c, int thickness) {
  // Bresenham: step along the major axis, carry the error of the minor one. Far-off endpoints
  // (a huge value) would make this walk long, so callers clamp to a margin around the image.
  int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy, lo = -(thickness - 1) / 2, hi = thickness / 2;
  while (true) {
    for (int oy = lo; oy <= hi; ++oy)
      for (int ox = lo; ox <= hi; ++ox) img.set(x0 + ox, y0 + oy, c);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void draw_text(Image& img, int x, int y, const std::string& text, Color c, int scale) {
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* g = glyph(text[i]);
    int cx = x + int(i) * kCellW * scale;
    for (int row = 0; row < kGlyphH; ++row)
      for (int col = 0; col < kGlyphW; ++col)
        if (g[row] & (0x10 >> col)) fill_rect(img, cx + col * scale, y + row * scale, cx + (col + 1) * scale - 1, y + (row + 1) * scale - 1, c);
  }
}

void draw_text_up(Image& img, int x, int y, const std::string& text, Color c, int scale) {
  // Rotating 90 degrees counter-clockwise maps the glyph's (col, row) to (row, -col): the text
  // runs upward from the bottom of its box, its top edge facing left.
  int len = text_width(text, scale);
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* g = glyph(text[i]);
    int base = y + len - 1 - int(i) * kCellW * scale;  // bottom of this character's cell
    for (int row = 0; row < kGlyphH; ++row)
      for (int col = 0; col < kGlyphW; ++col)
        if (g[row] & (0x10 >> col)) {
          int px = x + row * scale, py = base - (col + 1) * scale + 1;
          fill_rect(img, px, py, px + scale - 1, py + scale - 1, c);
        }
  }
}

}  // namespace rv::runlog
