// exif.h: the EXIF Orientation tag of a JPEG and the 8 flips / rotations it names.
//
// Cameras store pixels as the sensor read them and record "how to hold the picture" in the
// APP1 Exif segment (a small TIFF file: byte order, IFD0 entries; tag 0x0112 = Orientation):
//   1 as stored   2 mirror left-right   3 rotate 180   4 mirror top-bottom
//   5 transpose   6 rotate 90 clockwise  7 transverse  8 rotate 90 counter-clockwise
// The parser is written for hostile input: every read is bounds-checked against the segment,
// at most kMaxExifEntries entries are looked at, and anything malformed means "1" (as stored).
#pragma once
#include <cstddef>
#include <cstdint>

#include "data/image.h"

namespace rv::data {

inline constexpr int kMaxExifEntries = 512;  // IFD0 of real files has 10-30

// Orientation 1..8 of a JPEG (walks its markers up to the first scan); 1 when absent or malformed.
int jpeg_exif_orientation(const uint8_t* data, size_t size);
// The same, from the TIFF payload of an APP1 segment after its "Exif\0\0" prefix.
int tiff_orientation(const uint8_t* tiff, size_t size);

// Whether orientation o swaps height and width (5..8).
inline bool orientation_swaps_axes(int o) { return o >= 5 && o <= 8; }
// The image turned upright for orientation o (PIL's ImageOps.exif_transpose); 1 (or anything
// outside 2..8) returns it unchanged.
Image apply_orientation(Image im, int o);

}  // namespace rv::data
