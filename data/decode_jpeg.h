// decode_jpeg.h: JPEG -> RGB (or grey) through libjpeg-turbo's TurboJPEG API, with scaled decode.
//
// Scaled decode: the JPEG's 8x8 DCT blocks can be inverse-transformed at 4x4, 2x2 or 1x1, giving
// the image at 1/2, 1/4 or 1/8 size for a fraction of the work (no full-size pixels are ever
// made). A pipeline that will shrink a 500x375 ImageNet photo to 224 px can decode at 1/2 when
// the kept region is still at least the output size. decode_jpeg picks the scale from
// DecodeOptions::min_height / min_width; jpeg_scale_denominator says which it will be.
//
// Colour: grey JPEGs are replicated to RGB, CMYK / YCCK (Adobe, inverted) are converted as
// PIL's CMYK -> RGB does; the EXIF orientation is applied after decoding.
// Corrupt data: TurboJPEG errors become std::runtime_error naming the file. Warnings that PIL
// also lets through (extraneous bytes, a bad restart marker) are accepted, as PIL accepts them;
// a truncated file ("Premature end of JPEG file") is an error, as in PIL.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/decode_image.h"

namespace rv::data {

bool have_jpeg_decoder();  // false when built without TurboJPEG

// Header only: full-size height / width after EXIF orientation (when opt.exif_orientation).
ImageInfo peek_jpeg(const uint8_t* data, size_t size, const std::string& label, bool exif_orientation = true);

// 1, 2, 4 or 8: the largest DCT reduction that keeps a (height x width) image at least
// min_height x min_width (both after scaling, rounding up as libjpeg does).
int jpeg_scale_denominator(int height, int width, int min_height, int min_width);

// The DCT scale as eighths, M in 1..8, of a scale num / denom that libjpeg-turbo can decode at
// (1 / 1, 1 / 2, 1 / 4, 1 / 8 and M / 8); anything else is a std::invalid_argument naming `what`.
int jpeg_scale_eighths(int num, int denom, const std::string& what);
// A side of `size` pixels decoded at M / 8: ceil(size * M / 8), as libjpeg rounds.
inline int jpeg_scaled_size(int size, int eighths) { return int((int64_t(size) * eighths + 7) / 8); }

// opt.scale_num / opt.scale_denom at M / 8 with M = 3, 5, 6, 7: TurboJPEG picks its scale from
// the output size, so where a larger M gives the same size (an image under ~16 px a side) it
// would decode at that one; such a request is refused (std::invalid_argument), never decoded
// at another scale than asked.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt = {});

// The reference for benchmarks: TurboJPEG's whole-image, full-size RGB decode into `rgb`
// (resized as needed, reused across calls), with a decompressor kept per thread; no EXIF, no
// copy, no checks beyond TurboJPEG's. `ropevit bench data` measures the pipeline against it.
void decode_jpeg_raw(const uint8_t* data, size_t size, std::vector<uint8_t>& rgb);

// The other direction, for synthetic data sets, benchmarks and tests: baseline JPEG, `quality`
// 1..100, chroma `subsampling` "4:2:0" (PIL's default), "4:2:2", "4:4:4", "4:4:0" or "4:1:1" for
// RGB (grey images have none). Throws without TurboJPEG.
std::string encode_jpeg(const Image& im, int quality = 90, const std::string& subsampling = "4:2:0");

}  // namespace rv::data
