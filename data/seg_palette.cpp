// seg_palette.cpp: the class colour tables (see seg_palette.h).
#include "data/seg_palette.h"

#include <cmath>
#include <stdexcept>

#include "data/ade20k.h"

namespace rv::data {

const std::vector<Rgb>& ade20k_palette() {
  // mmsegmentation's ADE20KDataset METAINFO palette (a data table: the colours ADE20k pictures
  // are usually shown in), class 0 ("wall") first.
  static const std::vector<Rgb> p = {
    {120, 120, 120}, {180, 120, 120}, {6, 230, 230}, {80, 50, 50}, {4, 200, 3}, {120, 120, 80},
    {140, 140, 140}, {204, 5, 255}, {230, 230, 230}, {4, 250, 7}, {224, 5, 255}, {235, 255, 7},
    {150, 5, 61}, {120, 120, 70}, {8, 255, 51}, {255, 6, 82}, {143, 255, 140}, {204, 255, 4},
    {255, 51, 7}, {204, 70, 3}, {0, 102, 200}, {61, 230, 250}, {255, 6, 51}, {11, 102, 255},
    {255, 7, 71}, {255, 9, 224}, {9, 7, 230}, {220, 220, 220}, {255, 9, 92}, {112, 9, 255},
    {8, 255, 214}, {7, 255, 224}, {255, 184, 6}, {10, 255, 71}, {255, 41, 10}, {7, 255, 255},
    {224, 255, 8}, {102, 8, 255}, {255, 61, 6}, {255, 194, 7}, {255, 122, 8}, {0, 255, 20},
    {255, 8, 41}, {255, 5, 153}, {6, 51, 255}, {235, 12, 255}, {160, 150, 20}, {0, 163, 255},
    {140, 140, 140}, {250, 10, 15}, {20, 255, 0}, {31, 255, 0}, {255, 31, 0}, {255, 224, 0},
    {153, 255, 0}, {0, 0, 255}, {255, 71, 0}, {0, 235, 255}, {0, 173, 255}, {31, 0, 255},
    {11, 200, 200}, {255, 82, 0}, {0, 255, 245}, {0, 61, 255}, {0, 255, 112}, {0, 255, 133},
    {255, 0, 0}, {255, 163, 0}, {255, 102, 0}, {194, 255, 0}, {0, 143, 255}, {51, 255, 0},
    {0, 82, 255}, {0, 255, 41}, {0, 255, 173}, {10, 0, 255}, {173, 255, 0}, {0, 255, 153},
    {255, 92, 0}, {255, 0, 255}, {255, 0, 245}, {255, 0, 102}, {255, 173, 0}, {255, 0, 20},
    {255, 184, 184}, {0, 31, 255}, {0, 255, 61}, {0, 71, 255}, {255, 0, 204}, {0, 255, 194},
    {0, 255, 82}, {0, 10, 255}, {0, 112, 255}, {51, 0, 255}, {0, 194, 255}, {0, 122, 255},
    {0, 255, 163}, {255, 153, 0}, {0, 255, 10}, {255, 112, 0}, {143, 255, 0}, {82, 0, 255},
    {163, 255, 0}, {255, 235, 0}, {8, 184, 170}, {133, 0, 255}, {0, 255, 92}, {184, 0, 255},
    {255, 0, 31}, {0, 184, 255}, {0, 214, 255}, {255, 0, 112}, {92, 255, 0}, {0, 224, 255},
    {112, 224, 255}, {70, 184, 160}, {163, 0, 255}, {153, 0, 255}, {71, 255, 0}, {255, 0, 163},
    {255, 204, 0}, {255, 0, 143}, {0, 255, 235}, {133, 255, 0}, {255, 0, 235}, {245, 0, 255},
    {255, 0, 122}, {255, 245, 0}, {10, 190, 212}, {214, 255, 0}, {0, 204, 255}, {20, 0, 255},
    {255, 255, 0}, {0, 153, 255}, {0, 41, 255}, {0, 255, 204}, {41, 0, 255}, {41, 255, 0},
    {173, 0, 255}, {0, 245, 255}, {71, 0, 255}, {122, 0, 255}, {0, 255, 184}, {0, 92, 255},
    {184, 255, 0}, {0, 133, 255}, {255, 214, 0}, {25, 194, 194}, {102, 255, 0}, {92, 0, 255},
  };
  return p;
}

std::vector<Rgb> generated_palette(int64_t num_classes) {
  if (num_classes < 0) throw std::invalid_argument("generated_palette: num_classes must be >= 0");
  // Hue steps of the golden angle (137.5 degrees) keep neighbouring classes far apart on the
  // colour wheel for any K; saturation and value alternate over three levels so that classes
  // whose hues come close again still differ. HSV -> RGB by the usual sextant formula.
  std::vector<Rgb> out;
  out.reserve(size_t(num_classes));
  for (int64_t k = 0; k < num_classes; ++k) {
    const double h = std::fmod(double(k) * 137.50776405003785, 360.0) / 60.0;  // sextant units
    const double s = k % 3 == 1 ? 0.55 : 0.85, v = k % 3 == 2 ? 0.75 : 0.95;
    const double c = v * s, x = c * (1.0 - std::fabs(std::fmod(h, 2.0) - 1.0)), m = v - c;
    double r = 0, g = 0, b = 0;
    switch (int(h)) {
      case 0: r = c, g = x; break;
      case 1: r = x, g = c; break;
      case 2: g = c, b = x; break;
      case 3: g = x, b = c; break;
      case 4: r = x, b = c; break;
      default: r = c, b = x; break;
    }
    auto u8 = [m](double t) { return uint8_t(std::lround(255.0 * (t + m))); };
    out.push_back({u8(r), u8(g), u8(b)});
  }
  return out;
}

std::vector<Rgb> seg_palette(const std::vector<std::string>& class_names) {
  if (class_names == ade20k_class_names()) return ade20k_palette();
  return generated_palette(int64_t(class_names.size()));
}

}  // namespace rv::data
