// decode_jpeg_roi.cpp: the region decode through libjpeg's jpeg_crop_scanline / jpeg_skip_scanlines,
// with its fallback to decode_jpeg + crop (see decode_jpeg_roi.h).
//
// libjpeg reports a fatal error by calling error_exit, which must not return: it longjmps back to
// roi_decode_c. That function is written so that the jump is legal C++: no object with a
// destructor lives in it (buffers belong to the caller), and nothing it needs after the jump is
// kept in a register-only local.
#include "data/decode_jpeg_roi.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "data/decode_jpeg.h"
#include "data/exif.h"
#include "data/image_color.h"
#include "data/image_ops.h"

#if RV_HAVE_LIBJPEG
#include <csetjmp>
// jpeglib.h needs size_t and FILE declared first (cstdio, cstddef above).
#include <jpeglib.h>
// jerror.h: the message codes (JWRN_JPEG_EOF).
#include <jerror.h>
#endif

namespace rv::data {

namespace {

// The box of the stored (as-encoded) image whose pixels, turned upright by EXIF orientation o,
// are the upright box. Stored size SH x SW; the upright image is SW x SH for o = 5..8.
struct CropRect {
  int top, left, height, width;
};
CropRect stored_box(const CropRect& b, int o, int SH, int SW) {
  // The stored pixel shown at upright (y, x), for each orientation (PIL's exif_transpose).
  auto map = [&](int y, int x, int& sy, int& sx) {
    switch (o) {
      case 2: sy = y, sx = SW - 1 - x; break;               // mirror left-right
      case 3: sy = SH - 1 - y, sx = SW - 1 - x; break;      // rotate 180
      case 4: sy = SH - 1 - y, sx = x; break;               // mirror top-bottom
      case 5: sy = x, sx = y; break;                        // transpose
      case 6: sy = SH - 1 - x, sx = y; break;               // rotate 90 clockwise
      case 7: sy = SH - 1 - x, sx = SW - 1 - y; break;      // transverse
      case 8: sy = x, sx = SW - 1 - y; break;               // rotate 90 counter-clockwise
      default: sy = y, sx = x;
    }
  };
  int y0, x0, y1, x1;
  map(b.top, b.left, y0, x0);
  map(b.top + b.height - 1, b.left + b.width - 1, y1, x1);
  return {std::min(y0, y1), std::min(x0, x1), std::abs(y1 - y0) + 1, std::abs(x1 - x0) + 1};
}

// The fallback: the whole image at scale 1/d, then the box (same pixels, full cost).
Image full_then_crop(const uint8_t* data, size_t size, const std::string& label, const CropRect& b, int d, DecodeOptions opt) {
  opt.scale_denom = d;
  const Image im = decode_jpeg(data, size, label, opt);
  if (b.top + b.height > im.height || b.left + b.width > im.width)
    throw std::invalid_argument(label + ": decode_jpeg_crop: box " + std::to_string(b.height) + "x" + std::to_string(b.width) +
                                " at (" + std::to_string(b.top) + ", " + std::to_string(b.left) + ") is outside the " +
                                std::to_string(im.height) + "x" + std::to_string(im.width) + " image");
  return crop(im, b.top, b.left, b.height, b.width);
}

#if RV_HAVE_LIBJPEG

// A complete JPEG ends with the EOI marker (FF D9). One that does not is truncated (or has
// trailing bytes): the full decoder judges it, since the region decode stops reading early.
bool ends_with_eoi(const uint8_t* data, size_t size) { return size >= 4 && data[size - 2] == 0xFF && data[size - 1] == 0xD9; }

constexpr int kMaxScans = 500;  // as TurboJPEG's TJFLAG_LIMITSCANS: absurd progressive files are refused

struct ErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool premature_end;  // "Premature end of JPEG file": an error here, as in decode_jpeg and PIL
};

void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) are accepted as decode_jpeg accepts them, except a premature end.
void on_message(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->premature_end = true;
}
void no_output(j_common_ptr) {}

void limit_scans(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->progressive_mode && d->input_scan_number > kMaxScans) {
    auto* e = reinterpret_cast<ErrorMgr*>(c->err);
    std::snprintf(e->message, sizeof e->message, "progressive JPEG with more than %d scans", kMaxScans);
    std::longjmp(e->jump, 1);
  }
}

// What the C part reports back.
enum class RoiResult { ok, error, cmyk, bad_box, too_big };

struct RoiRequest {
  CropRect box;             // upright, at scale num / d
  int num, d, orientation, channels;
  int64_t max_pixels;
};

// The libjpeg part. `out` receives the stored-orientation box (height x width x C), `row` is
// scratch; both are owned by the caller so that a longjmp skips no destructor.
RoiResult roi_decode_c(const uint8_t* data, size_t size, const RoiRequest& rq, ErrorMgr& err, jpeg_decompress_struct& ci,
                       std::vector<uint8_t>& out, std::vector<uint8_t>& row, CropRect& sbox, int& out_c, int& SH, int& SW) {
  ci.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  err.pub.output_message = no_output;
  err.premature_end = false;
  err.message[0] = '\0';
  jpeg_progress_mgr progress{};
  progress.progress_monitor = limit_scans;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&ci);
    return RoiResult::error;
  }
  jpeg_create_decompress(&ci);
  ci.progress = &progress;
  jpeg_mem_src(&ci, data, static_cast<unsigned long>(size));
  jpeg_read_header(&ci, TRUE);
  if (int64_t(ci.image_width) * ci.image_height > rq.max_pixels || ci.image_width == 0 || ci.image_height == 0) {
    jpeg_destroy_decompress(&ci);
    return RoiResult::too_big;
  }
  if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&ci);
    return RoiResult::cmyk;
  }
  const bool grey_out = ci.jpeg_color_space == JCS_GRAYSCALE && rq.channels == 1;
  ci.out_color_space = grey_out ? JCS_GRAYSCALE : JCS_RGB;  // grey sources replicate to RGB, as TurboJPEG's TJPF_RGB
  ci.scale_num = static_cast<unsigned>(rq.num);  // 1 / d, or M / 8 (the smaller IDCTs: 3x3 .. 7x7)
  ci.scale_denom = static_cast<unsigned>(rq.d);
  ci.dct_method = JDCT_ISLOW;  // TurboJPEG's (and PIL's) default: the same pixels
  ci.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&ci);
  SH = int(ci.output_height), SW = int(ci.output_width);
  const bool swap = orientation_swaps_axes(rq.orientation);
  const int UH = swap ? SW : SH, UW = swap ? SH : SW;
  const CropRect& b = rq.box;
  if (b.top < 0 || b.left < 0 || b.height < 1 || b.width < 1 || b.top + b.height > UH || b.left + b.width > UW) {
    jpeg_destroy_decompress(&ci);
    SH = UH, SW = UW;  // reported upright in the error
    return RoiResult::bad_box;
  }
  sbox = stored_box(b, rq.orientation, SH, SW);

  // Columns: the box widened by the margin, which jpeg_crop_scanline aligns down to an iMCU
  // boundary (xoff) and widens (xw). Skipped when the band would be the whole width anyway.
  JDIMENSION xoff = JDIMENSION(std::max(0, sbox.left - kRoiMargin));
  JDIMENSION xw = JDIMENSION(std::min(SW, sbox.left + sbox.width + kRoiMargin)) - xoff;
  if (xoff > 0 || int(xw) < SW) jpeg_crop_scanline(&ci, &xoff, &xw);
  else xoff = 0, xw = JDIMENSION(SW);
  out_c = ci.output_components;
  // Rows: skip to the margin above the box, read down to the box's last row, stop.
  const int y0 = std::max(0, sbox.top - kRoiMargin), y_end = sbox.top + sbox.height;
  if (y0 > 0) jpeg_skip_scanlines(&ci, JDIMENSION(y0));
  // Up to kRows rows per jpeg_read_scanlines call: libjpeg makes a whole row group (2 rows for
  // 4:2:0's vertical upsampling, more when DCT-scaled) per step, and asking for one row at a time
  // makes it park the rest in a spare buffer and copy it out on the next call. The rows are the
  // same either way; never more than y_end - y, so that nothing below the box is decoded.
  constexpr int kRows = 16;
  const size_t band_bytes = size_t(xw) * out_c;
  row.resize(band_bytes * kRows);
  out.resize(size_t(sbox.height) * sbox.width * out_c);
  const size_t col0 = size_t(sbox.left - int(xoff)) * out_c, row_bytes = size_t(sbox.width) * out_c;
  JSAMPROW rows[kRows];
  for (int j = 0; j < kRows; ++j) rows[j] = row.data() + size_t(j) * band_bytes;
  for (int y = int(ci.output_scanline); y < y_end; y = int(ci.output_scanline)) {
    const int got = int(jpeg_read_scanlines(&ci, rows, JDIMENSION(std::min(kRows, y_end - y))));
    if (got < 1) break;  // suspension cannot happen with a memory source
    for (int j = 0; j < got; ++j)
      if (y + j >= sbox.top) std::memcpy(out.data() + size_t(y + j - sbox.top) * row_bytes, rows[j] + col0, row_bytes);
  }
  const bool complete = int(ci.output_scanline) >= y_end;
  // The rows below the box are never decoded: abort instead of finish (which would read them).
  jpeg_abort_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  if (!complete) {
    std::snprintf(err.message, sizeof err.message, "decoding stopped before the last row of the region");
    return RoiResult::error;
  }
  return RoiResult::ok;
}

#endif  // RV_HAVE_LIBJPEG

}  // namespace

#if RV_HAVE_LIBJPEG
bool have_jpeg_roi_decoder() { return have_jpeg_decoder(); }
#else
bool have_jpeg_roi_decoder() { return false; }
#endif

Image decode_jpeg_crop(const uint8_t* data, size_t size, const std::string& label, int top, int left, int height, int width,
                       int scale_denom, const DecodeOptions& opt) {
  if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
    throw std::invalid_argument(label + ": decode_jpeg_crop: scale_denom must be 1, 2, 4 or 8, got " + std::to_string(scale_denom));
  jpeg_scale_eighths(opt.scale_num, scale_denom, label + ": decode_jpeg_crop");  // M / 8 needs scale_denom 8
  if (opt.channels != 1 && opt.channels != 3)
    throw std::invalid_argument(label + ": decode_jpeg_crop: channels must be 1 or 3, got " + std::to_string(opt.channels));
  const CropRect box{top, left, height, width};
  if (top < 0 || left < 0 || height < 1 || width < 1)
    throw std::invalid_argument(label + ": decode_jpeg_crop: expected a non-empty box at top, left >= 0, got " +
                                std::to_string(height) + "x" + std::to_string(width) + " at (" + std::to_string(top) + ", " +
                                std::to_string(left) + ")");
#if RV_HAVE_LIBJPEG
  if (!ends_with_eoi(data, size) || size > 0xFFFFFFFFu) return full_then_crop(data, size, label, box, scale_denom, opt);
  const int o = opt.exif_orientation ? jpeg_exif_orientation(data, size) : 1;
  const RoiRequest rq{box, opt.scale_num, scale_denom, o, opt.channels, opt.max_pixels};
  ErrorMgr err;
  jpeg_decompress_struct ci;
  std::vector<uint8_t> buf, row;
  CropRect sbox{};
  int out_c = 0, SH = 0, SW = 0;
  switch (roi_decode_c(data, size, rq, err, ci, buf, row, sbox, out_c, SH, SW)) {
    case RoiResult::ok: break;
    case RoiResult::cmyk: return full_then_crop(data, size, label, box, scale_denom, opt);
    case RoiResult::too_big:  // the full decoder words the size error
      return full_then_crop(data, size, label, box, scale_denom, opt);
    case RoiResult::bad_box:
      throw std::invalid_argument(label + ": decode_jpeg_crop: box " + std::to_string(height) + "x" + std::to_string(width) +
                                  " at (" + std::to_string(top) + ", " + std::to_string(left) + ") is outside the " +
                                  std::to_string(SH) + "x" + std::to_string(SW) + " image at scale " +
                                  std::to_string(opt.scale_num) + "/" + std::to_string(scale_denom));
    case RoiResult::error: throw std::runtime_error(label + ": corrupt or truncated JPEG (" + err.message + ")");
  }
  if (err.premature_end) throw std::runtime_error(label + ": corrupt or truncated JPEG (Premature end of JPEG file)");
  // The decoded box becomes the image's pixels as they are (no second zero-filled buffer and copy).
  Image im;
  im.height = sbox.height, im.width = sbox.width, im.channels = out_c;
  im.pixels = std::move(buf);
  if (opt.channels == 1 && im.channels == 3) im = rgb_to_grey(im);
  return apply_orientation(std::move(im), o);
#else
  return full_then_crop(data, size, label, box, scale_denom, opt);
#endif
}

}  // namespace rv::data
