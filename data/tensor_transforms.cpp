// tensor_transforms.cpp: crop + resize, flip, normalise and erase on float32 (C, H, W) tensors.
#include "data/tensor_transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace rv::data::chw {

namespace {

// The taps of a 1-d resample from `in` source pixels (starting at source pixel `first`) to
// `out` pixels: output o = sum over j < n[o] of w[o*K + j] * x[first + idx[o*K + j]].
struct Taps {
  int64_t in = 0, out = 0, K = 0, first = 0;
  std::vector<int64_t> idx, n;
  std::vector<float> w;
  bool identity = false;  // out == in: the pass is skipped (PyTorch skips it too)

  Taps(int64_t in_, int64_t out_, int64_t K_, int64_t first_)
      : in(in_), out(out_), K(K_), first(first_), idx(size_t(out_ * K_), 0), n(size_t(out_), 0),
        w(size_t(out_ * K_), 0.0f) {}
  void add(int64_t o, int64_t i, float weight) {
    idx[size_t(o * K + n[size_t(o)])] = first + i;
    w[size_t(o * K + n[size_t(o)])] = weight;
    ++n[size_t(o)];
  }
};

// Keys' cubic convolution kernel pieces for |x| <= 1 and 1 < |x| < 2.
float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

// interpolate's align_corners=false taps, in float as PyTorch computes them for f32 input.
Taps plain_taps(int64_t in, int64_t out, int64_t first, bool cubic) {
  Taps t(in, out, cubic ? 4 : 2, first);
  const float s = float(in) / float(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = s * (float(o) + 0.5f) - 0.5f;
    if (!cubic && src < 0.0f) src = 0.0f;  // bilinear clamps the source index, bicubic does not
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const float f = std::min(std::max(src - float(i0), 0.0f), 1.0f);
    if (!cubic) {
      t.add(o, i0, 1.0f - f);
      t.add(o, i0 + (i0 < in - 1 ? 1 : 0), f);
    } else {
      const float A = -0.75f;
      const float c[4] = {cubic2(f + 1.0f, A), cubic1(f, A), cubic1(1.0f - f, A), cubic2(2.0f - f, A)};
      for (int64_t j = 0; j < 4; ++j) t.add(o, std::clamp<int64_t>(i0 - 1 + j, 0, in - 1), c[j]);
    }
  }
  return t;
}

// Antialiased taps: the filter (half-width 1 triangle or 2 cubic) stretched by the downscale
// factor, sampled at the source pixel centres and normalised to sum 1. The mixed float and
// double expressions are PyTorch's, so the f32 weights round as they do there.
Taps antialias_taps(int64_t in, int64_t out, int64_t first, bool cubic) {
  const int interp = cubic ? 4 : 2;
  const float s = float(in) / float(out);
  const float support = (s >= 1.0) ? float((interp * 0.5) * s) : float(interp * 0.5);
  const int64_t max_taps = int64_t(std::ceil(support)) * 2 + 1;
  const float invscale = (s >= 1.0) ? float(1.0 / s) : 1.0f;
  auto filter = [cubic](float x) -> float {
    x = std::abs(x);
    if (!cubic) return x < 1.0f ? 1.0f - x : 0.0f;
    if (x < 1.0f) return cubic1(x, -0.5f);
    if (x < 2.0f) return cubic2(x, -0.5f);
    return 0.0f;
  };
  Taps t(in, out, max_taps, first);
  std::vector<float> wt(static_cast<size_t>(max_taps));
  for (int64_t o = 0; o < out; ++o) {
    const float center = float(s * (double(o) + 0.5));
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t count =
        std::clamp<int64_t>(std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - lo, 0, max_taps);
    float total = 0;
    for (int64_t j = 0; j < count; ++j) {
      wt[size_t(j)] = filter(float((double(j + lo) - center + 0.5) * invscale));
      total += wt[size_t(j)];
    }
    for (int64_t j = 0; j < count; ++j) t.add(o, lo + j, total != 0.0f ? wt[size_t(j)] / total : wt[size_t(j)]);
  }
  return t;
}

Taps make_taps(int64_t in, int64_t out, int64_t first, const ResizeOptions& opt) {
  const bool cubic = opt.interp == Interp::bicubic;
  Taps t = opt.antialias ? antialias_taps(in, out, first, cubic) : plain_taps(in, out, first, cubic);
  // Same size: every output pixel is its source pixel (the weights are exactly 1 and 0), so
  // the pass is a copy.
  t.identity = in == out;
  return t;
}

void check_chw(const Tensor& t, const char* who, const char* arg, bool need_contiguous) {
  if (!t.defined() || t.dim() != 3 || t.dtype() != DType::f32)
    throw std::invalid_argument(std::string(who) + ": " + arg + " must be a float32 (C, H, W) tensor, got " +
                                (t.defined() ? std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape())
                                             : std::string("an undefined tensor")));
  if (need_contiguous && !t.is_contiguous())
    throw std::invalid_argument(std::string(who) + ": " + arg + " must be contiguous (it is written in place)");
}

}  // namespace

void resized_crop_into(const Tensor& src, const CropBox& box, const Tensor& out, const ResizeOptions& opt) {
  check_chw(src, "chw::resized_crop_into", "src", false);
  check_chw(out, "chw::resized_crop_into", "out", true);
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  const int64_t OH = out.size(1), OW = out.size(2);
  if (out.size(0) != C)
    throw std::invalid_argument("chw::resized_crop_into: out has " + std::to_string(out.size(0)) +
                                " channels, src has " + std::to_string(C));
  if (box.height < 1 || box.width < 1 || box.top < 0 || box.left < 0 || box.top + box.height > H ||
      box.left + box.width > W)
    throw std::invalid_argument("chw::resized_crop_into: the box (top " + std::to_string(box.top) + ", left " +
                                std::to_string(box.left) + ", " + std::to_string(box.height) + "x" +
                                std::to_string(box.width) + ") is not inside the " + std::to_string(H) + "x" +
                                std::to_string(W) + " image");
  if (OH < 1 || OW < 1 || C == 0) {
    if (OH < 0 || OW < 0) throw std::invalid_argument("chw::resized_crop_into: negative output size");
    return;
  }
  const Taps tw = make_taps(box.width, OW, box.left, opt);
  const Taps th = make_taps(box.height, OH, box.top, opt);
  const float* x = src.data<float>();
  float* y = out.data<float>();
  const int64_t sc = src.stride(0), sh = src.stride(1), sw = src.stride(2);
  // Width pass: rows of the box -> `rows` (box.height, OW) per channel. Height pass: output
  // row o = weighted sum of whole rows (a contiguous loop over OW the compiler vectorises).
  std::vector<float> rows(size_t(box.height * OW));
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * sc;
    for (int64_t h = 0; h < box.height; ++h) {
      const float* xr = xc + (box.top + h) * sh;
      float* rr = rows.data() + h * OW;
      if (tw.identity) {
        for (int64_t o = 0; o < OW; ++o) rr[o] = xr[(box.left + o) * sw];
        continue;
      }
      for (int64_t o = 0; o < OW; ++o) {
        const int64_t* ix = &tw.idx[size_t(o * tw.K)];
        const float* wx = &tw.w[size_t(o * tw.K)];
        float acc = xr[ix[0] * sw] * wx[0];
        for (int64_t j = 1; j < tw.n[size_t(o)]; ++j) acc += xr[ix[j] * sw] * wx[j];
        rr[o] = acc;
      }
    }
    float* yc = y + c * OH * OW;
    if (th.identity) {
      std::copy(rows.begin(), rows.end(), yc);
      continue;
    }
    for (int64_t o = 0; o < OH; ++o) {
      float* orow = yc + o * OW;
      const int64_t* ih = &th.idx[size_t(o * th.K)];
      const float* wh = &th.w[size_t(o * th.K)];
      const float* r0 = rows.data() + (ih[0] - box.top) * OW;
      const float w0 = wh[0];
      for (int64_t i = 0; i < OW; ++i) orow[i] = r0[i] * w0;
      for (int64_t j = 1; j < th.n[size_t(o)]; ++j) {
        const float* rj = rows.data() + (ih[j] - box.top) * OW;
        const float wj = wh[j];
        for (int64_t i = 0; i < OW; ++i) orow[i] += rj[i] * wj;
      }
    }
  }
}

Tensor resized_crop(const Tensor& src, const CropBox& box, int64_t out_h, int64_t out_w, const ResizeOptions& opt) {
  check_chw(src, "chw::resized_crop", "src", false);
  if (out_h < 1 || out_w < 1)
    throw std::invalid_argument("chw::resized_crop: the output size must be at least 1x1, got " +
                                std::to_string(out_h) + "x" + std::to_string(out_w));
  Tensor out = empty({src.size(0), out_h, out_w});
  resized_crop_into(src, box, out, opt);
  return out;
}

Tensor resize(const Tensor& src, int64_t out_h, int64_t out_w, const ResizeOptions& opt) {
  check_chw(src, "chw::resize", "src", false);
  return resized_crop(src, {0, 0, src.size(1), src.size(2)}, out_h, out_w, opt);
}

void hflip_(const Tensor& img) {
  check_chw(img, "chw::hflip_", "img", true);
  const int64_t rows = img.size(0) * img.size(1), W = img.size(2);
  float* p = img.data<float>();
  for (int64_t r = 0; r < rows; ++r) std::reverse(p + r * W, p + (r + 1) * W);
}

void normalize_(const Tensor& img, const std::vector<double>& mean, const std::vector<double>& std) {
  check_chw(img, "chw::normalize_", "img", true);
  const int64_t C = img.size(0), plane = img.size(1) * img.size(2);
  auto pick = [&](const std::vector<double>& v, const char* name, int64_t c) {
    if (v.size() != 1 && int64_t(v.size()) != C)
      throw std::invalid_argument(std::string("chw::normalize_: ") + name + " has " + std::to_string(v.size()) +
                                  " values, expected 1 or one per channel (" + std::to_string(C) + ")");
    return float(v.size() == 1 ? v[0] : v[size_t(c)]);
  };
  float* p = img.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    const float m = pick(mean, "mean", c), s = pick(std, "std", c);
    if (!(s > 0)) throw std::invalid_argument("chw::normalize_: std must be > 0, got " + std::to_string(s));
    float* q = p + c * plane;
    for (int64_t i = 0; i < plane; ++i) q[i] = (q[i] - m) / s;  // torchvision: sub_(mean).div_(std)
  }
}

EraseMode erase_mode_from_name(const std::string& name) {
  if (name == "const") return EraseMode::constant;
  if (name == "rand") return EraseMode::per_channel;
  if (name == "pixel") return EraseMode::per_pixel;
  throw std::invalid_argument("random erasing mode: expected \"const\", \"rand\" or \"pixel\", got \"" + name + "\"");
}

void erase_(const Tensor& img, const CropBox& box, EraseMode mode, Generator& gen) {
  check_chw(img, "chw::erase_", "img", true);
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  if (box.height < 0 || box.width < 0 || box.top < 0 || box.left < 0 || box.top + box.height > H ||
      box.left + box.width > W)
    throw std::invalid_argument("chw::erase_: the box is not inside the " + std::to_string(H) + "x" +
                                std::to_string(W) + " image");
  const int64_t n = C * box.height * box.width;
  Tensor values;  // timm's _get_pixels: normal_() of the patch shape, of (C, 1, 1), or zeros
  if (mode == EraseMode::per_pixel) values = randn({n}, gen);
  if (mode == EraseMode::per_channel) values = randn({C}, gen);
  const float* v = values.defined() ? values.data<float>() : nullptr;
  float* p = img.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < box.height; ++h) {
      float* row = p + (c * H + box.top + h) * W + box.left;
      for (int64_t w = 0; w < box.width; ++w)
        row[w] = mode == EraseMode::per_pixel     ? v[(c * box.height + h) * box.width + w]
                 : mode == EraseMode::per_channel ? v[c]
                                                  : 0.0f;
    }
}

}  // namespace rv::data::chw
