// pil_resize.h: antialiased image resize with the same pixels as Pillow's Image.resize.
//
// Pillow resamples separably (a horizontal pass into an 8-bit intermediate, then a vertical
// pass). Each output pixel x of an axis scaled by s = in / out is a weighted sum of the inputs
// whose centres lie within support * max(s, 1) of the back-projected centre (x + 0.5) * s: when
// shrinking, the filter is stretched by s, which is what antialiasing means here (every input
// pixel contributes; a plain bilinear sample would skip most of them). The weights are
// normalised to sum 1 in double, then turned into 22-bit fixed point, and the sums are rounded
// and clipped to 0..255. Reproducing that arithmetic gives Pillow's exact bytes; torchvision's
// Resize on a PIL image and timm's eval transforms call this resize.
//
//   filter     support   kernel (|x| = distance in input pixels / max(s, 1))
//   bilinear   1         1 - |x|
//   bicubic    2         Keys cubic with a = -0.5
#pragma once
#include <cstddef>
#include <cstdint>

#include "data/image.h"

namespace rv::data {

enum class Interp { bilinear, bicubic };
const char* interp_name(Interp i);
Interp interp_from_name(const std::string& name);  // "bilinear" | "bicubic"

// A read-only window into an image: a crop without copying.
struct ImageView {
  const uint8_t* data = nullptr;  // pixel (0, 0)
  int height = 0, width = 0, channels = 0;
  size_t row_stride = 0;  // bytes between rows
  const uint8_t* row(int y) const { return data + size_t(y) * row_stride; }
};
ImageView view_of(const Image& im);
// The (top, left, height, width) rectangle; it must lie inside the image.
ImageView crop_view(const Image& im, int top, int left, int height, int width);

// Resize to out_height x out_width, as Pillow's im.resize((out_width, out_height), filter)
// (a same-size request copies). Out sizes must be >= 1.
Image resize(const ImageView& src, int out_height, int out_width, Interp interp);
inline Image resize(const Image& src, int out_height, int out_width, Interp interp) {
  return resize(view_of(src), out_height, out_width, interp);
}
// The same into `out`, whose pixel buffer is reused when it is large enough (a per-thread
// image in a loader worker: no allocation per sample). `src` must not view `out`.
void resize_into(const ImageView& src, int out_height, int out_width, Interp interp, Image& out);

}  // namespace rv::data
