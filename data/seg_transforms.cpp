// seg_transforms.cpp: mmseg's segmentation transforms on uint8 images and label maps (see
// seg_transforms.h): OpenCV's HSV arithmetic, mmseg's crop, distortion and padding. The
// resizes are OpenCV's from data/cv_resize.h, shared with detection.
#include "data/seg_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/box_transforms.h"
#include "data/image_ops.h"
#include "data/random_draws.h"

namespace rv::data {

namespace {

std::string size_str(int h, int w) { return std::to_string(h) + "x" + std::to_string(w); }

// OpenCV's saturate_cast<int>(float): round to nearest, ties to even (cvRound).
int cv_round(float v) { return int(std::nearbyint(v)); }

}  // namespace

std::array<int64_t, 2> random_resize_target(const std::array<int64_t, 2>& scale, double ratio) {
  if (!(ratio > 0)) throw std::invalid_argument("random_resize_target: ratio must be > 0, got " + std::to_string(ratio));
  return {int64_t(double(scale[0]) * ratio), int64_t(double(scale[1]) * ratio)};  // Python int(): truncation
}

double draw_resize_ratio(Generator& gen, double lo, double hi) {
  if (!(lo > 0 && hi >= lo))
    throw std::invalid_argument("draw_resize_ratio: expected 0 < lo <= hi, got " + std::to_string(lo) + ", " +
                                std::to_string(hi));
  return draw_uniform01(gen) * (hi - lo) + lo;
}

void seg_resize_keep_ratio(Image& image, Image* labels, const std::array<int64_t, 2>& scale) {
  if (labels && (labels->height != image.height || labels->width != image.width || labels->channels != 1))
    throw std::invalid_argument("seg_resize_keep_ratio: the label map is " + size_str(labels->height, labels->width) +
                                "x" + std::to_string(labels->channels) + " but the image is " +
                                size_str(image.height, image.width) + " (expected the same size, 1 channel)");
  const auto [h, w] = keep_ratio_size(image.height, image.width, scale[0], scale[1]);
  image = cv_resize_linear(image, int(h), int(w));
  if (labels) *labels = cv_resize_nearest(*labels, int(h), int(w));
}

CropBox clip_crop_box(const CropBox& box, int64_t H, int64_t W) {
  CropBox c = box;
  c.height = std::max<int64_t>(0, std::min(box.top + box.height, H) - box.top);
  c.width = std::max<int64_t>(0, std::min(box.left + box.width, W) - box.left);
  return c;
}

bool seg_crop_accepted(const Image& labels, const CropBox& box, double cat_max_ratio) {
  const CropBox c = clip_crop_box(box, labels.height, labels.width);
  int64_t count[256] = {};
  for (int64_t y = c.top; y < c.top + c.height; ++y) {
    const uint8_t* r = labels.row(int(y)) + c.left;
    for (int64_t x = 0; x < c.width; ++x) ++count[r[x]];
  }
  int64_t classes = 0, largest = 0, total = 0;
  for (int v = 0; v < 256; ++v) {
    if (v == kSegIgnore || count[v] == 0) continue;
    ++classes;
    largest = std::max(largest, count[v]);
    total += count[v];
  }
  // numpy: np.max(cnt) / np.sum(cnt) < cat_max_ratio, in double.
  return classes > 1 && double(largest) / double(total) < cat_max_ratio;
}

CropBox select_seg_crop(const Image& labels, const std::function<CropBox()>& next_box, const SegCropOptions& opt) {
  if (labels.channels != 1 || labels.empty())
    throw std::invalid_argument("draw_seg_crop: expected a non-empty 1-channel label map, got " +
                                size_str(labels.height, labels.width) + "x" + std::to_string(labels.channels));
  if (opt.height < 1 || opt.width < 1 || opt.attempts < 0)
    throw std::invalid_argument("draw_seg_crop: crop size must be >= 1x1 and attempts >= 0, got " +
                                std::to_string(opt.height) + "x" + std::to_string(opt.width) + ", " +
                                std::to_string(opt.attempts));
  CropBox box = clip_crop_box(next_box(), labels.height, labels.width);
  if (opt.cat_max_ratio < 1.0) {
    for (int i = 0; i < opt.attempts; ++i) {
      if (seg_crop_accepted(labels, box, opt.cat_max_ratio)) break;
      box = clip_crop_box(next_box(), labels.height, labels.width);
    }
  }
  return box;
}

CropBox draw_seg_crop(const Image& labels, Generator& gen, const SegCropOptions& opt) {
  const int64_t margin_h = std::max<int64_t>(labels.height - opt.height, 0);
  const int64_t margin_w = std::max<int64_t>(labels.width - opt.width, 0);
  return select_seg_crop(
      labels,
      [&] {
        CropBox b;
        b.top = draw_int(gen, 0, margin_h);  // np.random.randint(0, margin + 1): top first, then left
        b.left = draw_int(gen, 0, margin_w);
        b.height = opt.height;
        b.width = opt.width;
        return b;
      },
      opt);
}

PhotoMetricParams draw_photometric(Generator& gen, const PhotoMetricOptions& opt) {
  PhotoMetricParams p;
  if (draw_bernoulli(gen, 0.5)) p.brightness = float(draw_uniform(gen, -opt.brightness_delta, opt.brightness_delta));
  p.contrast_first = draw_bernoulli(gen, 0.5);
  if (draw_bernoulli(gen, 0.5)) p.contrast = float(draw_uniform(gen, opt.contrast_lo, opt.contrast_hi));
  if (draw_bernoulli(gen, 0.5)) p.saturation = float(draw_uniform(gen, opt.saturation_lo, opt.saturation_hi));
  if (draw_bernoulli(gen, 0.5) && opt.hue_delta > 0) p.hue = int(draw_int(gen, -opt.hue_delta, opt.hue_delta - 1));
  return p;
}

namespace {

// mmseg's convert on one byte: float32 multiply, float32 add, clip, truncate (astype(uint8)).
inline uint8_t convert_px(uint8_t v, float alpha, float beta) {
  float f = float(v) * alpha;
  f = f + beta;
  f = std::min(std::max(f, 0.f), 255.f);
  return uint8_t(f);
}

void check_rgb(const char* op, const Image& im) {
  if (im.channels != 3)
    throw std::invalid_argument(std::string(op) + ": expected a 3-channel RGB image, got " +
                                std::to_string(im.channels) + " channels");
}

// OpenCV's RGB2HSV_b tables (hsv_shift 12, hue range 180), built once.
struct HsvTables {
  int sdiv[256], hdiv[256];
  HsvTables() {
    sdiv[0] = hdiv[0] = 0;
    for (int i = 1; i < 256; ++i) {
      sdiv[i] = int(std::nearbyint(double(255 << 12) / (1.0 * i)));
      hdiv[i] = int(std::nearbyint(double(180 << 12) / (6.0 * i)));
    }
  }
};
const HsvTables& hsv_tables() {
  static const HsvTables t;
  return t;
}

}  // namespace

void photometric_convert_(Image& im, float alpha, float beta) {
  for (uint8_t& v : im.pixels) v = convert_px(v, alpha, beta);
}

void rgb_to_hsv_cv_(Image& im) {
  check_rgb("rgb_to_hsv_cv_", im);
  const HsvTables& t = hsv_tables();
  constexpr int shift = 12, half = 1 << (shift - 1);
  const size_t n = size_t(im.height) * im.width;
  uint8_t* p = im.pixels.data();
  for (size_t i = 0; i < n; ++i, p += 3) {
    const int r = p[0], g = p[1], b = p[2];
    const int v = std::max(b, std::max(g, r)), vmin = std::min(b, std::min(g, r));
    const int diff = v - vmin;
    const int s = (diff * t.sdiv[v] + half) >> shift;
    int h;  // OpenCV's priority when channels tie: r, then g, then b
    if (v == r) h = g - b;
    else if (v == g) h = b - r + 2 * diff;
    else h = r - g + 4 * diff;
    h = (h * t.hdiv[diff] + half) >> shift;
    if (h < 0) h += 180;
    p[0] = uint8_t(std::min(h, 255));
    p[1] = uint8_t(s);
    p[2] = uint8_t(v);
  }
}

namespace {

// What HSV2RGB_b computes from H and from a byte alone, once: the hue's sector and fraction
// (h * 6 / 180 split into integer and fractional parts; H >= 180 wraps), and byte / 255.
struct HsvBackTables {
  int sector[256];
  float frac[256], unit[256];
  HsvBackTables() {
    const float hscale = 6.0f / 180.0f;
    for (int i = 0; i < 256; ++i) {
      const float h = float(i) * hscale, pre = std::trunc(h);
      frac[i] = h - pre;
      sector[i] = int(pre - std::trunc(pre * (1.0f / 6.0f)) * 6.0f);
      unit[i] = float(i) * (1.0f / 255.0f);
    }
  }
};
const HsvBackTables& hsv_back_tables() {
  static const HsvBackTables t;
  return t;
}

// Pixels [x0, x1) of one HSV row back to RGB; kTruncate: the vector loop's conversion.
template <bool kTruncate>
void hsv_to_rgb_span(uint8_t* p, int x0, int x1) {
  static const int sector_data[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
  const HsvBackTables& t = hsv_back_tables();
  auto to_u8 = [](float f) {
    const float x = f * 255.0f;
    return uint8_t(std::clamp(kTruncate ? int(x) : cv_round(x), 0, 255));
  };
  for (int x = x0; x < x1; ++x) {
    uint8_t* q = p + 3 * x;
    const float s = t.unit[q[1]], v = t.unit[q[2]];
    float b = v, g = v, r = v;
    if (s != 0) {
      const float h = t.frac[q[0]];
      const float tab[4] = {v, v * (1.f - s), v * std::fma(-s, h, 1.f), v * std::fma(-s, 1.f - h, 1.f)};
      const int* sd = sector_data[t.sector[q[0]]];
      b = tab[sd[0]];
      g = tab[sd[1]];
      r = tab[sd[2]];
    }
    q[0] = to_u8(r);
    q[1] = to_u8(g);
    q[2] = to_u8(b);
  }
}

}  // namespace

void hsv_to_rgb_cv_(Image& im) {
  check_rgb("hsv_to_rgb_cv_", im);
  // OpenCV's HSV2RGB_b, checked against cv2 on all 180 x 256 x 256 inputs: float s, v in 0..1,
  // 1 - s * h as one fused multiply-add (OpenCV's own build contracts it), the result * 255
  // converted to uint8. cvtColor runs it row by row, vectorised over the first multiple of 32
  // pixels of each row (AVX2), which TRUNCATES, and a scalar tail, which ROUNDS; both are kept,
  // so a 512-wide crop is all "vector" pixels, as in mmseg's training.
  constexpr int kLanes = 32;
  const int vector_end = im.width / kLanes * kLanes;
  for (int y = 0; y < im.height; ++y) {
    hsv_to_rgb_span<true>(im.row(y), 0, vector_end);
    hsv_to_rgb_span<false>(im.row(y), vector_end, im.width);
  }
}

void photometric_distort_(Image& im, const PhotoMetricParams& p) {
  check_rgb("photometric_distort_", im);
  if (p.brightness) photometric_convert_(im, 1.f, *p.brightness);
  if (p.contrast_first && p.contrast) photometric_convert_(im, *p.contrast, 0.f);
  if (p.saturation) {
    rgb_to_hsv_cv_(im);
    const float a = *p.saturation;
    for (size_t i = 1; i < im.pixels.size(); i += 3) im.pixels[i] = convert_px(im.pixels[i], a, 0.f);
    hsv_to_rgb_cv_(im);
  }
  if (p.hue) {
    rgb_to_hsv_cv_(im);
    for (size_t i = 0; i < im.pixels.size(); i += 3) {
      int h = (int(im.pixels[i]) + *p.hue) % 180;  // Python's %: never negative
      if (h < 0) h += 180;
      im.pixels[i] = uint8_t(h);
    }
    hsv_to_rgb_cv_(im);
  }
  if (!p.contrast_first && p.contrast) photometric_convert_(im, *p.contrast, 0.f);
}

Image pad_to(const Image& im, int height, int width, uint8_t value) {
  if (height < im.height || width < im.width)
    throw std::invalid_argument("pad_to: cannot pad a " + size_str(im.height, im.width) + " image to " +
                                size_str(height, width) + " (it is larger; crop first)");
  Image out(height, width, im.channels, value);
  const size_t row = size_t(im.width) * im.channels;
  for (int y = 0; y < im.height; ++y) std::memcpy(out.row(y), im.row(y), row);
  return out;
}

void normalize_pad_into(const Image& im, const Tensor& out, const std::array<float, 3>& mean,
                        const std::array<float, 3>& stdev) {
  check_rgb("normalize_pad_into", im);
  if (out.dtype() != DType::f32 || out.dim() != 3 || out.size(0) != 3 || !out.is_contiguous() ||
      out.size(1) < im.height || out.size(2) < im.width)
    throw std::invalid_argument("normalize_pad_into: expected a contiguous f32 (3, >= " + std::to_string(im.height) +
                                ", >= " + std::to_string(im.width) + ") output, got " + shape_str(out.shape()) + " " +
                                dtype_name(out.dtype()));
  const int64_t OH = out.size(1), OW = out.size(2);
  float* o = out.data<float>();
  for (int c = 0; c < 3; ++c) {
    float* plane = o + c * OH * OW;
    for (int64_t y = 0; y < OH; ++y) {
      float* d = plane + y * OW;
      int64_t x = 0;
      if (y < im.height) {
        const uint8_t* s = im.row(int(y)) + c;
        // torch: (x - mean) / std, two float32 roundings.
        for (; x < im.width; ++x) d[x] = (float(s[x * 3]) - mean[size_t(c)]) / stdev[size_t(c)];
      }
      for (; x < OW; ++x) d[x] = 0.f;
    }
  }
}

void label_pad_into(const Image& labels, const Tensor& out) {
  if (labels.channels != 1 || out.dtype() != DType::u8 || out.dim() != 2 || !out.is_contiguous() ||
      out.size(0) < labels.height || out.size(1) < labels.width)
    throw std::invalid_argument("label_pad_into: expected a 1-channel label map and a contiguous u8 (>= " +
                                std::to_string(labels.height) + ", >= " + std::to_string(labels.width) +
                                ") output, got " + std::to_string(labels.channels) + " channels and " +
                                shape_str(out.shape()) + " " + dtype_name(out.dtype()));
  const int64_t OH = out.size(0), OW = out.size(1);
  uint8_t* o = out.data<uint8_t>();
  for (int64_t y = 0; y < OH; ++y) {
    uint8_t* d = o + y * OW;
    int64_t x = 0;
    if (y < labels.height) {
      std::memcpy(d, labels.row(int(y)), size_t(labels.width));
      x = labels.width;
    }
    std::memset(d + x, kSegIgnore, size_t(OW - x));
  }
}

}  // namespace rv::data
