// decode_jpeg_roi.h: region-of-interest JPEG decode - only the pixels a training crop keeps.
//
// RandomResizedCrop keeps on average about half of an image's area (scale 0.08..1), so decoding
// the whole JPEG and then cutting the crop throws away half the inverse DCTs, upsampling and
// colour conversion. libjpeg-turbo's libjpeg API can skip that work:
//   jpeg_crop_scanline   decodes only a band of columns (widened to whole iMCUs: 8 or 16 px
//                        at scale 1, 8/d or 16/d px at scale 1/d)
//   jpeg_skip_scanlines  skips rows (above the box: Huffman-decoded but not transformed; below
//                        the box: not read at all)
// Both combine with DCT scaling (1/2, 1/4, 1/8, as decode_jpeg's scaled decode, and M/8 with
// opt.scale_num = M and scale_denom 8: libjpeg-turbo's 3x3 .. 7x7 IDCTs).
//
// Exactness: the result is the same bytes as decode_jpeg at the same scale followed by crop.
// The region asked from libjpeg is the box widened by a few pixels on each side (kRoiMargin)
// before its iMCU alignment, so that fancy (triangle) chroma upsampling at the box's edge sees
// the same neighbours as in a full decode; tests/unit/test_jpeg_roi.cpp checks it bit for bit on
// every chroma subsampling, grey, progressive, restart markers, all 8 EXIF orientations and
// every scale.
//
// Falls back to decode_jpeg + crop (same pixels, full cost) for: CMYK / YCCK files (libjpeg-turbo
// cannot crop-convert them as PIL does), files that do not end with the EOI marker (truncated:
// the region decode would never read the missing tail, so the full decoder gives the verdict,
// an error naming the file), and builds without the libjpeg API (have_jpeg_roi_decoder()).
// EXIF orientation: the box, given on the upright image, is mapped back onto the stored pixels,
// decoded there and turned upright (a flip / transpose of only the box).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/decode_image.h"

namespace rv::data {

inline constexpr int kRoiMargin = 4;  // px around the box (fancy upsampling reaches 1 chroma sample = 2 or 4 px)

// True when built with libjpeg-turbo's libjpeg API (else decode_jpeg_crop decodes it all, then crops).
bool have_jpeg_roi_decoder();

// The rows top .. top + height - 1 and columns left .. left + width - 1 of the image that
// decode_jpeg(data, size, label, opt) gives at scale opt.scale_num / scale_denom (1/1, 1/2,
// 1/4, 1/8, or M/8 with scale_denom 8; opt's min_height / min_width are ignored: the scale is
// given), in that image's upright coordinates, which are ceil(H * M / 8) x ceil(W * M / 8) for
// a full-size upright H x W. A box outside that image is a std::invalid_argument; a corrupt
// file a std::runtime_error naming `label`.
Image decode_jpeg_crop(const uint8_t* data, size_t size, const std::string& label, int top, int left, int height,
                       int width, int scale_denom, const DecodeOptions& opt = {});

}  // namespace rv::data
