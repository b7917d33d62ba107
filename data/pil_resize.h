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
//   fast   16-bit weights (Pillow-SIMD's precision choice: the largest P at which every
//          |weight| * 2^P fits an int16), so that one 16-bit multiply-add (vpmaddwd) handles
//          two taps, and a 16-bit intermediate: the horizontal pass keeps F = 7 fraction bits
//          below Pillow's byte (clip(round(sum * 2^F), 0, 255 * 2^F), an int16), and the
//          vertical pass reads it with P <= 22 - F = 15 bits of weight. Within 1 grey level of
//          Pillow's bytes, always. Proof, in levels, for one output byte:
//            Let x_j be the exact real horizontal sum of intermediate row j (double weights d).
//            Pillow's byte is m_j = clip(x_j + a_j + r_j): a_j the 22-bit weights' error,
//            |a_j| <= 255 * E22_h (E = the largest sum_k |w_k / 2^P - d_k| of an output), and
//            |r_j| <= 1/2 its rounding. Ours is M_j = clip(x_j + b_j + s_j), |b_j| <= 255 *
//            E16_h, |s_j| <= 2^-(F+1). Clipping to 0..255 shortens distances, so
//              |m_j - M_j| <= G = 1/2 + 2^-(F+1) + 255 * (E22_h + E16_h).
//            Vertical, before the last rounding: Pillow's Y = sum m_j u_j (u: 22-bit weights
//            / 2^22), ours Y' = sum M_j v_j (v: P-bit weights / 2^P), exactly (int32 sums):
//              |Y - Y'| <= G * sum |u_j| + 255 * sum |u_j - v_j|   (0 <= M_j <= 255).
//            If that is < 1, the two round-half-up results differ by at most 1, and so do
//            the clipped bytes.
//          The inequality (and 255 * 2^F * sum |v_j| * 2^P < 2^31, no int32 overflow) is checked
//          per resize on the actual weights. Every RandomResizedCrop to 224 passes: over all
//          sides 8..500 -> 224 the left side is at most 0.69 for bicubic (G <= 0.53, sum |u|
//          <= 1.27 from the negative lobes), 0.53 for bilinear. Where it fails (a shrink by
//          ~50x or more: hundreds of taps at P = 15 add up), fast mode takes its 8-bit path:
//          Pillow's horizontal pass (the intermediate is Pillow's own bytes), then a vertical
//          pass with 16-bit weights at P <= 22: the one rounded sum moves by at most
//          255 * taps * (2^-P + 2^-22) / 2 < 1, so the bytes differ by at most 1. (16-bit
//          weights with an 8-bit intermediate, as Pillow-SIMD, can reach 2: an intermediate
//          off by 1 times a vertical sum |w| of up to 1.27; the tests found such pixels. The
//          7 fraction bits are what keep G near 1/2 instead of 1.) A resize along one axis
//          only takes the 8-bit path's arithmetic for it. Every code path of one mode gives
//          the same bytes.
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

// A sub-pixel source rectangle, in pixels of the source: rows top .. bottom, columns left ..
// right (Pillow's resize(size, box=(left, top, right, bottom)), float edges as Pillow's).
struct ResizeBox {
  float top = 0, left = 0, bottom = 0, right = 0;
};
// The box resized to out_height x out_width, as Pillow's im.resize((out_w, out_h), filter, box):
// output pixel i samples around box.left + (i + 0.5) * (box width / out_w), and the filter's
// taps reach past the box's edges up to the source's (a crop first and then resize would
// clamp them at the crop). The whole source as the box is resize_into. The fast-mode scaled
// JPEG decode (image_pipeline.h) maps its crop into the DCT-scaled image as such a box.
void resize_box_into(const ImageView& src, const ResizeBox& box, int out_height, int out_width, Interp interp, Image& out,
                     ResizeMode mode = ResizeMode::exact);

}  // namespace rv::data
