// image.h: an 8-bit RGB raster and the drawing primitives the plots need (pixels, lines,
// rectangles, text in the built-in 5x7 font). No antialiasing: plots are crisp 1-2 px lines.
// Coordinates: x to the right, y down, (0, 0) the top-left pixel; drawing outside is clipped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rv::runlog {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Color&) const = default;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel, H*W*3

  Image() = default;
  Image(int w, int h, Color fill = {255, 255, 255});
  Color at(int x, int y) const;  // throws std::out_of_range outside
  void set(int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = &rgb[(size_t(y) * size_t(width) + size_t(x)) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
};

void fill_rect(Image& img, int x0, int y0, int x1, int y1, Color c);  // inclusive corners
void draw_rect(Image& img, int x0, int y0, int x1, int y1, Color c);  // outline
// Bresenham line, each point a thickness x thickness square (thickness 1: single pixels).
void draw_line(Image& img, int x0, int y0, int x1, int y1, Color c, int thickness = 1);

// Text in the 5x7 font, one 6x8 cell per character times `scale`; (x, y) is the top-left of
// the first cell. Characters outside printable ASCII draw as '?'.
constexpr int kGlyphW = 5, kGlyphH = 7, kCellW = 6, kCellH = 8;
void draw_text(Image& img, int x, int y, const std::string& text, Color c, int scale = 1);
// The same, turned 90 degrees counter-clockwise (reads bottom to top: a y-axis label);
// (x, y) is the top-left of the rotated text's bounding box.
void draw_text_up(Image& img, int x, int y, const std::string& text, Color c, int scale = 1);
inline int text_width(const std::string& text, int scale = 1) { return int(text.size()) * kCellW * scale; }

// The font: 7 rows of 5 bits (bit 4 = leftmost column) for ASCII 32..126.
const uint8_t* glyph(char ch);

}  // namespace rv::runlog
