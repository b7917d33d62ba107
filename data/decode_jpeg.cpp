// decode_jpeg.cpp: TurboJPEG decoding, or a clear error when ropevit was built without it.
#include "data/decode_jpeg.h"

#include <cstring>
#include <memory>
#include <stdexcept>

#include "data/exif.h"
#include "data/image_color.h"

#if RV_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

namespace rv::data {

int jpeg_scale_denominator(int height, int width, int min_height, int min_width) {
  for (int d : {8, 4, 2}) {
    // libjpeg's scaled size is ceil(size / d) (TJSCALED with 1/d).
    if ((height + d - 1) / d >= min_height && (width + d - 1) / d >= min_width) return d;
  }
  return 1;
}

int jpeg_scale_eighths(int num, int denom, const std::string& what) {
  const bool ok = (num == 1 && (denom == 1 || denom == 2 || denom == 4 || denom == 8)) || (denom == 8 && num >= 1 && num <= 8);
  if (!ok)
    throw std::invalid_argument(what + ": the JPEG DCT scale must be 1/1, 1/2, 1/4, 1/8 or M/8 with M = 1..8, got " +
                                std::to_string(num) + "/" + std::to_string(denom));
  return num * 8 / denom;
}

#if !RV_HAVE_TURBOJPEG

bool have_jpeg_decoder() { return false; }

[[noreturn]] static void no_turbojpeg(const std::string& label) {
  throw std::runtime_error(label + ": cannot decode a JPEG: ropevit was built without TurboJPEG "
                           "(install Debian's libturbojpeg0-dev, e.g. with scripts/setup, and re-run cmake)");
}
ImageInfo peek_jpeg(const uint8_t*, size_t, const std::string& label, bool) { no_turbojpeg(label); }
Image decode_jpeg(const uint8_t*, size_t, const std::string& label, const DecodeOptions&) { no_turbojpeg(label); }
std::string encode_jpeg(const Image&, int, const std::string&) { no_turbojpeg("encode_jpeg"); }
void decode_jpeg_raw(const uint8_t*, size_t, std::vector<uint8_t>&) { no_turbojpeg("decode_jpeg_raw"); }

#else

bool have_jpeg_decoder() { return true; }

namespace {

struct TjHandle {
  tjhandle h = tjInitDecompress();
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
};

// tjDecompressHeader3 for `data`; throws naming the file when the header cannot be read.
void read_header(TjHandle& tj, const uint8_t* data, size_t size, const std::string& label, int& w, int& h, int& cs,
                 int64_t max_pixels = kMaxImagePixels) {
  if (!tj.h) throw std::runtime_error(label + ": TurboJPEG could not create a decompressor");
  if (size > 0xFFFFFFFFu) throw std::runtime_error(label + ": JPEG file larger than 4 GiB");
  int subsamp = 0;
  if (tjDecompressHeader3(tj.h, data, (unsigned long)size, &w, &h, &subsamp, &cs) != 0)
    throw std::runtime_error(label + ": not a readable JPEG (" + tjGetErrorStr2(tj.h) + ")");
  if (w <= 0 || h <= 0 || int64_t(w) * h > max_pixels)
    throw std::runtime_error(label + ": JPEG size " + std::to_string(w) + "x" + std::to_string(h) +
                             " is empty or larger than the " + std::to_string(max_pixels) + "-pixel limit");
}

}  // namespace

ImageInfo peek_jpeg(const uint8_t* data, size_t size, const std::string& label, bool exif_orientation) {
  TjHandle tj;
  int w = 0, h = 0, cs = 0;
  read_header(tj, data, size, label, w, h, cs);
  const int o = exif_orientation ? jpeg_exif_orientation(data, size) : 1;
  if (orientation_swaps_axes(o)) std::swap(w, h);
  return {h, w, ImageFormat::jpeg};
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt) {
  if (opt.channels != 1 && opt.channels != 3)
    throw std::invalid_argument(label + ": decode_jpeg: channels must be 1 or 3, got " + std::to_string(opt.channels));
  TjHandle tj;
  int w = 0, h = 0, cs = 0;
  read_header(tj, data, size, label, w, h, cs, opt.max_pixels);
  const int o = opt.exif_orientation ? jpeg_exif_orientation(data, size) : 1;
  // The minimum size is asked for upright; compare it against the stored (unrotated) axes.
  const int min_h = orientation_swaps_axes(o) ? opt.min_width : opt.min_height;
  const int min_w = orientation_swaps_axes(o) ? opt.min_height : opt.min_width;
  if (opt.scale_denom != 0 && opt.scale_denom != 1 && opt.scale_denom != 2 && opt.scale_denom != 4 && opt.scale_denom != 8)
    throw std::invalid_argument(label + ": decode_jpeg: scale_denom must be 0 (from the minimum size), 1, 2, 4 or 8, got " +
                                std::to_string(opt.scale_denom));
  // A forced scale (as eighths), else no minimum asked for (0 x 0): full size.
  const int m = opt.scale_denom > 0        ? jpeg_scale_eighths(opt.scale_num, opt.scale_denom, label + ": decode_jpeg")
                : (min_h > 0 || min_w > 0) ? 8 / jpeg_scale_denominator(h, w, min_h, min_w)
                                           : 8;
  const int sh = jpeg_scaled_size(h, m), sw = jpeg_scaled_size(w, m);
  // TurboJPEG decodes at the largest of its scaling factors whose size fits (sw, sh): refuse a
  // request where that is not M / 8 itself (a larger M giving the same size: tiny images).
  for (int larger = m + 1; larger <= 8; ++larger)
    if (jpeg_scaled_size(h, larger) == sh && jpeg_scaled_size(w, larger) == sw)
      throw std::invalid_argument(label + ": decode_jpeg: at " + std::to_string(w) + "x" + std::to_string(h) + " the scales " +
                                  std::to_string(m) + "/8 and " + std::to_string(larger) +
                                  "/8 give the same size, and TurboJPEG would decode at the larger one");

  const bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  const bool grey_src = cs == TJCS_GRAY;
  int pf = TJPF_RGB, src_c = 3;
  if (cmyk) pf = TJPF_CMYK, src_c = 4;
  else if (grey_src && opt.channels == 1) pf = TJPF_GRAY, src_c = 1;
  std::vector<uint8_t> buf(size_t(sh) * sw * src_c);
  // ISLOW DCT and fancy upsampling are TurboJPEG's defaults and PIL's (same pixels); LIMITSCANS
  // refuses progressive files with absurd scan counts (a known denial-of-service input).
  const int flags = TJFLAG_LIMITSCANS;
  if (tjDecompress2(tj.h, data, (unsigned long)size, buf.data(), sw, 0, sh, pf, flags) != 0) {
    const std::string msg = tjGetErrorStr2(tj.h);
    // Warnings leave a complete image; PIL accepts those too, except a truncated file.
    const bool warning = tjGetErrorCode(tj.h) == TJERR_WARNING;
    if (!warning || msg.find("Premature end") != std::string::npos)
      throw std::runtime_error(label + ": corrupt or truncated JPEG (" + msg + ")");
  }

  Image im;
  if (cmyk) im = cmyk_to_rgb(buf.data(), sh, sw, /*inverted=*/true);
  else {
    im = Image(sh, sw, src_c);
    std::memcpy(im.pixels.data(), buf.data(), buf.size());
  }
  if (opt.channels == 1 && im.channels == 3) im = rgb_to_grey(im);
  return apply_orientation(std::move(im), o);
}

void decode_jpeg_raw(const uint8_t* data, size_t size, std::vector<uint8_t>& rgb) {
  thread_local TjHandle tj;
  int w = 0, h = 0, cs = 0;
  read_header(tj, data, size, "decode_jpeg_raw", w, h, cs);
  rgb.resize(size_t(w) * h * 3);
  if (tjDecompress2(tj.h, data, (unsigned long)size, rgb.data(), w, 0, h, TJPF_RGB, TJFLAG_LIMITSCANS) != 0 &&
      tjGetErrorCode(tj.h) != TJERR_WARNING)
    throw std::runtime_error(std::string("decode_jpeg_raw: ") + tjGetErrorStr2(tj.h));
}

std::string encode_jpeg(const Image& im, int quality, const std::string& subsampling) {
  if (im.empty() || (im.channels != 1 && im.channels != 3) || quality < 1 || quality > 100)
    throw std::invalid_argument("encode_jpeg: expected a non-empty 1- or 3-channel image and quality 1..100");
  int rgb_ss = TJSAMP_420;
  if (subsampling == "4:4:4") rgb_ss = TJSAMP_444;
  else if (subsampling == "4:2:2") rgb_ss = TJSAMP_422;
  else if (subsampling == "4:4:0") rgb_ss = TJSAMP_440;
  else if (subsampling == "4:1:1") rgb_ss = TJSAMP_411;
  else if (subsampling != "4:2:0")
    throw std::invalid_argument("encode_jpeg: subsampling must be 4:2:0, 4:2:2, 4:4:4, 4:4:0 or 4:1:1, got '" + subsampling + "'");
  tjhandle h = tjInitCompress();
  if (!h) throw std::runtime_error("encode_jpeg: TurboJPEG could not create a compressor");
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  const int pf = im.channels == 3 ? TJPF_RGB : TJPF_GRAY, ss = im.channels == 3 ? rgb_ss : TJSAMP_GRAY;
  const int rc = tjCompress2(h, im.pixels.data(), im.width, 0, im.height, pf, &buf, &len, ss, quality, 0);
  std::string out;
  const std::string err = rc != 0 ? tjGetErrorStr2(h) : "";
  if (rc == 0) out.assign(reinterpret_cast<const char*>(buf), len);
  tjFree(buf);
  tjDestroy(h);
  if (rc != 0) throw std::runtime_error("encode_jpeg: " + err);
  return out;
}

#endif

}  // namespace rv::data
