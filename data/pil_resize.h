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
//
// Two arithmetics (ResizeMode):
//   exact  Pillow's: 22-bit weights, the bytes of Image.resize bit for bit (the default here).
//   fast   Pillow's horizontal pass (so the 8-bit intermediate is Pillow's own), then a
//          vertical pass with the same double weights rounded to 16-bit integers, as
//          Pillow-SIMD (the precision P is the largest <= 22 at which every |weight| * 2^P fits
//          an int16), so one 16-bit multiply-add (vpmaddwd) handles two taps of 8 outputs.
//          Within 1 grey level of Pillow's bytes, always: the one rounded sum moves by at most
//          255 * taps * (2^-P + 2^-22) / 2 (0.07 of a level for a 224 crop's <= 9 taps at
//          P >= 14; P grows as the taps shrink), less than 1, so the rounded bytes differ by at
//          most 1. (16-bit weights in both passes, as Pillow-SIMD, can reach 2: an intermediate
//          off by 1 times a vertical sum |w| of up to ~1.14; the tests found such pixels.)
//          Every code path of one mode gives the same bytes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "data/image.h"

namespace rv::data {

enum class Interp { bilinear, bicubic };
const char* interp_name(Interp i);
Interp interp_from_name(const std::string& name);  // "bilinear" | "bicubic"

enum class ResizeMode { exact, fast };
const char* resize_mode_name(ResizeMode m);
ResizeMode resize_mode_from_name(const std::string& name);  // "exact" | "fast"

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
Image resize(const ImageView& src, int out_height, int out_width, Interp interp, ResizeMode mode = ResizeMode::exact);
inline Image resize(const Image& src, int out_height, int out_width, Interp interp, ResizeMode mode = ResizeMode::exact) {
  return resize(view_of(src), out_height, out_width, interp, mode);
}
// The same into `out`, whose pixel buffer is reused when it is large enough (a per-thread
// image in a loader worker: no allocation per sample). `src` must not view `out`.
void resize_into(const ImageView& src, int out_height, int out_width, Interp interp, Image& out,
                 ResizeMode mode = ResizeMode::exact);

}  // namespace rv::data
