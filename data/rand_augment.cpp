// rand_augment.cpp: timm's RandAugment and the PIL operations it calls (see rand_augment.h).
#include "data/rand_augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>
#include <stdexcept>

#include "data/image_ops.h"

namespace rv::data {

const char* ra_op_name(RaOp op) {
  static const char* names[] = {"AutoContrast", "Equalize", "Invert",     "Rotate",  "Posterize",
                                "Solarize",     "SolarizeAdd", "Color",   "Contrast", "Brightness",
                                "Sharpness",    "ShearX",   "ShearY",     "TranslateXRel", "TranslateYRel"};
  return names[int(op)];
}

// ---- the PIL operations --------------------------------------------------------------------

namespace {

Image map_lut(const Image& im, const std::vector<std::array<uint8_t, 256>>& lut) {
  Image out = im;
  const int C = im.channels;
  for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = lut[i % C][out.pixels[i]];
  return out;
}

std::vector<std::array<uint32_t, 256>> histograms(const Image& im) {
  std::vector<std::array<uint32_t, 256>> h(im.channels);
  for (auto& a : h) a.fill(0);
  for (size_t i = 0; i < im.pixels.size(); ++i) ++h[i % im.channels][im.pixels[i]];
  return h;
}

std::array<uint8_t, 256> identity_lut() {
  std::array<uint8_t, 256> l;
  for (int i = 0; i < 256; ++i) l[i] = uint8_t(i);
  return l;
}

}  // namespace

Image auto_contrast(const Image& im) {
  // ImageOps.autocontrast(cutoff=0): per channel, stretch [lowest, highest] used value to [0, 255].
  std::vector<std::array<uint8_t, 256>> lut;
  for (const auto& h : histograms(im)) {
    int lo = 0, hi = 255;
    while (lo < 256 && h[lo] == 0) ++lo;
    while (hi >= 0 && h[hi] == 0) --hi;
    if (hi <= lo) {
      lut.push_back(identity_lut());
      continue;
    }
    const double scale = 255.0 / (hi - lo), offset = -lo * scale;
    std::array<uint8_t, 256> l;
    for (int i = 0; i < 256; ++i) l[i] = uint8_t(std::clamp(int(i * scale + offset), 0, 255));
    lut.push_back(l);
  }
  return map_lut(im, lut);
}

Image equalize(const Image& im) {
  // ImageOps.equalize: per channel, the cumulative histogram spread over 256 levels in steps of
  // (count - count of the last used value) // 255, integer arithmetic.
  std::vector<std::array<uint8_t, 256>> lut;
  for (const auto& h : histograms(im)) {
    uint64_t total = 0, last = 0;
    int used = 0;
    for (int i = 0; i < 256; ++i)
      if (h[i]) total += h[i], last = h[i], ++used;
    const uint64_t step = used <= 1 ? 0 : (total - last) / 255;
    if (step == 0) {
      lut.push_back(identity_lut());
      continue;
    }
    std::array<uint8_t, 256> l;
    uint64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      l[i] = uint8_t(std::min<uint64_t>(n / step, 255));
      n += h[i];
    }
    lut.push_back(l);
  }
  return map_lut(im, lut);
}

Image invert(const Image& im) {
  Image out = im;
  for (uint8_t& v : out.pixels) v = uint8_t(255 - v);
  return out;
}

Image posterize(const Image& im, int bits) {
  if (bits >= 8) return im;
  const uint8_t mask = uint8_t(~((1 << (8 - std::max(bits, 0))) - 1));
  Image out = im;
  for (uint8_t& v : out.pixels) v &= mask;
  return out;
}

Image solarize_add(const Image& im, int add, int threshold) {
  Image out = im;
  for (uint8_t& v : out.pixels)
    if (v < threshold) v = uint8_t(std::min(255, v + add));
  return out;
}

Image sharpness(const Image& im, float factor) {
  // ImageEnhance.Sharpness: blend(SMOOTH-filtered image, image, factor). SMOOTH is the 3x3 kernel
  // (1 1 1 / 1 5 1 / 1 1 1) / 13 in float, rounded by +0.5 and truncation; the 1-pixel border is
  // copied, and images smaller than 3x3 are left as they are.
  Image smooth = im;
  const int H = im.height, W = im.width, C = im.channels;
  if (H >= 3 && W >= 3) {
    const float e = float(1.0 / 13.0), c = float(5.0 / 13.0);
    for (int y = 1; y < H - 1; ++y) {
      const uint8_t *up = im.row(y - 1), *mid = im.row(y), *dn = im.row(y + 1);
      uint8_t* o = smooth.row(y);
      for (int x = 1; x < W - 1; ++x)
        for (int ch = 0; ch < C; ++ch) {
          const int i = x * C + ch;
          auto row = [&](const uint8_t* r, float k1) { return float(r[i - C]) * e + float(r[i]) * k1 + float(r[i + C]) * e; };
          float ss = 0.5f;
          ss += row(dn, e);
          ss += row(mid, c);
          ss += row(up, e);
          o[i] = uint8_t(std::clamp(ss, 0.0f, 255.0f));
        }
    }
  }
  return blend(smooth, im, factor);
}

namespace {

// PIL's transform filters, on one channel of the input, at input coordinates (xin, yin) (pixel
// centres at +0.5). False when the point is outside the image (the output keeps the fill).
inline int clampi(int v, int n) { return v < 0 ? 0 : v < n ? v : n - 1; }

bool sample_bilinear(const Image& im, double xin, double yin, uint8_t* out) {
  if (xin < 0.0 || xin >= im.width || yin < 0.0 || yin >= im.height) return false;
  xin -= 0.5, yin -= 0.5;
  const int x = int(std::floor(xin)), y = int(std::floor(yin));
  const double dx = xin - x, dy = yin - y;
  const int C = im.channels, x0 = clampi(x, im.width) * C, x1 = clampi(x + 1, im.width) * C;
  for (int c = 0; c < C; ++c) {
    const uint8_t* r0 = im.row(clampi(y, im.height)) + c;
    double v1 = r0[x0] + (double(r0[x1]) - r0[x0]) * dx, v2 = v1;
    if (y + 1 >= 0 && y + 1 < im.height) {
      const uint8_t* r1 = im.row(y + 1) + c;
      v2 = r1[x0] + (double(r1[x1]) - r1[x0]) * dx;
    }
    out[c] = uint8_t(v1 + (v2 - v1) * dy);
  }
  return true;
}

inline double cubic(double v1, double v2, double v3, double v4, double d) {
  const double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

bool sample_bicubic(const Image& im, double xin, double yin, uint8_t* out) {
  if (xin < 0.0 || xin >= im.width || yin < 0.0 || yin >= im.height) return false;
  xin -= 0.5, yin -= 0.5;
  int x = int(std::floor(xin)), y = int(std::floor(yin));
  const double dx = xin - x, dy = yin - y;
  --x, --y;
  const int C = im.channels;
  int xs[4];
  for (int k = 0; k < 4; ++k) xs[k] = clampi(x + k, im.width) * C;
  for (int c = 0; c < C; ++c) {
    auto row = [&](int yy) {
      const uint8_t* r = im.row(yy) + c;
      return cubic(r[xs[0]], r[xs[1]], r[xs[2]], r[xs[3]], dx);
    };
    // Rows outside the image repeat the previous row's value (PIL's edge rule).
    double v[4];
    v[0] = row(clampi(y, im.height));
    for (int k = 1; k < 4; ++k) v[k] = (y + k >= 0 && y + k < im.height) ? row(y + k) : v[k - 1];
    const double r = cubic(v[0], v[1], v[2], v[3], dy);
    out[c] = r <= 0.0 ? 0 : r >= 255.0 ? 255 : uint8_t(r);
  }
  return true;
}

}  // namespace

Image affine(const Image& im, const std::array<double, 6>& m, Interp resample, const std::array<uint8_t, 3>& fill) {
  Image out(im.height, im.width, im.channels);
  const int C = im.channels;
  for (int y = 0; y < out.height; ++y) {
    uint8_t* o = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      const double xi = x + 0.5, yi = y + 0.5;
      const double xx = m[0] * xi + m[1] * yi + m[2], yy = m[3] * xi + m[4] * yi + m[5];
      const bool hit = resample == Interp::bilinear ? sample_bilinear(im, xx, yy, o + x * C) : sample_bicubic(im, xx, yy, o + x * C);
      if (!hit)
        for (int c = 0; c < C; ++c) o[x * C + c] = fill[c];
    }
  }
  return out;
}

Image rotate(const Image& im, double degrees, Interp resample, const std::array<uint8_t, 3>& fill) {
  // PIL Image.rotate(angle, resample, expand=False, fillcolor): about the centre (W/2, H/2),
  // counter-clockwise; the inverse map's matrix entries rounded to 15 decimals as PIL does.
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;
  if (angle == 0) return im;
  if (angle == 180) {
    Image out(im.height, im.width, im.channels);
    const size_t n = size_t(im.height) * im.width, C = im.channels;
    for (size_t i = 0; i < n; ++i) std::memcpy(&out.pixels[i * C], &im.pixels[(n - 1 - i) * C], C);
    return out;
  }
  const double cx = im.width / 2.0, cy = im.height / 2.0;
  const double a = -angle * M_PI / 180.0;
  auto r15 = [](double v) { return std::nearbyint(v * 1e15) / 1e15; };
  std::array<double, 6> m = {r15(std::cos(a)), r15(std::sin(a)), 0.0, r15(-std::sin(a)), r15(std::cos(a)), 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + m[2] + cx;
  m[5] = m[3] * -cx + m[4] * -cy + m[5] + cy;
  return affine(im, m, resample, fill);
}

Image ra_apply_op(const Image& im, const RaOpParams& p, const std::array<uint8_t, 3>& fill) {
  const double v = p.arg;
  switch (p.op) {
    case RaOp::auto_contrast: return auto_contrast(im);
    case RaOp::equalize: return equalize(im);
    case RaOp::invert: return invert(im);
    case RaOp::rotate: return rotate(im, v, p.resample, fill);
    case RaOp::posterize: return posterize(im, int(v));
    case RaOp::solarize: return solarize(im, int(v));
    case RaOp::solarize_add: return solarize_add(im, int(v), 128);
    case RaOp::color: return adjust_saturation(im, float(v));
    case RaOp::contrast: return adjust_contrast(im, float(v));
    case RaOp::brightness: return adjust_brightness(im, float(v));
    case RaOp::sharpness: return sharpness(im, float(v));
    case RaOp::shear_x: return affine(im, {1, v, 0, 0, 1, 0}, p.resample, fill);
    case RaOp::shear_y: return affine(im, {1, 0, 0, v, 1, 0}, p.resample, fill);
    case RaOp::translate_x_rel: return affine(im, {1, 0, v * im.width, 0, 1, 0}, p.resample, fill);
    case RaOp::translate_y_rel: return affine(im, {1, 0, 0, 0, 1, v * im.height}, p.resample, fill);
  }
  return im;
}

// ---- RandAugment ---------------------------------------------------------------------------

RandAugment RandAugment::parse(const std::string& config) {
  auto fail = [&](const std::string& why) -> RandAugment {
    throw std::invalid_argument("RandAugment config \"" + config + "\": " + why +
                                " (expected e.g. \"rand-m9-mstd0.5-inc1\": sections m, n, p, mstd, mmax, inc)");
  };
  RandAugment ra;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dash = config.find('-', start);
    parts.push_back(config.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  if (parts.empty() || parts[0] != "rand") return fail("it must start with \"rand\"");
  static const std::regex section(R"(^([a-z]+)([0-9].*)$)");
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& s = parts[i];
    if (!s.empty() && s[0] == 't') return fail("transform sets / weights (\"" + s + "\") are not supported");
    std::smatch m;
    if (!std::regex_match(s, m, section)) continue;  // timm skips sections without a number
    const std::string key = m[1], val = m[2];
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(val, &used);
      if (used != val.size()) throw std::invalid_argument(val);
    } catch (const std::exception&) {
      return fail("section \"" + s + "\" has no number");
    }
    if (key == "m") ra.magnitude = int(x);
    else if (key == "n") ra.num_layers = int(x);
    else if (key == "p") ra.prob = x;
    else if (key == "mstd") ra.magnitude_std = x > 100 ? INFINITY : x;
    else if (key == "mmax") ra.magnitude_max = int(x);
    else if (key == "inc") ra.increasing = int(x) != 0;
    else return fail("unknown section \"" + s + "\"");
  }
  ra.ops = {RaOp::auto_contrast, RaOp::equalize, RaOp::invert, RaOp::rotate, RaOp::posterize,
            RaOp::solarize, RaOp::solarize_add, RaOp::color, RaOp::contrast, RaOp::brightness,
            RaOp::sharpness, RaOp::shear_x, RaOp::shear_y, RaOp::translate_x_rel, RaOp::translate_y_rel};
  return ra;
}

RandAugmentParams RandAugment::params(RandomDraws& rd) const {
  RandAugmentParams p;
  for (int l = 0; l < num_layers; ++l) {
    const RaOp op = ops[size_t(rd.randint(0, int64_t(ops.size()) - 1))];
    if (prob < 1.0 && rd.uniform() > prob) continue;
    double m = magnitude;
    if (std::isinf(magnitude_std)) m = rd.uniform(0, magnitude);
    else if (magnitude_std > 0) m = rd.normal(magnitude, magnitude_std);
    m = std::max(0.0, std::min(m, magnitude_max));
    const double level = m / 10.0;
    auto negate = [&](double v) { return rd.uniform() > 0.5 ? -v : v; };
    RaOpParams o{op, 0, interpolation.value_or(Interp::bicubic)};
    switch (op) {
      case RaOp::auto_contrast: case RaOp::equalize: case RaOp::invert: break;
      case RaOp::rotate: o.arg = negate(level * 30.0); break;
      case RaOp::posterize: o.arg = increasing ? 4 - int(level * 4) : int(level * 4); break;
      case RaOp::solarize: {
        const int t = std::min(256, int(level * 256));
        o.arg = increasing ? 256 - t : t;
        break;
      }
      case RaOp::solarize_add: o.arg = std::min(128, int(level * 110)); break;
      case RaOp::color: case RaOp::contrast: case RaOp::brightness: case RaOp::sharpness:
        o.arg = increasing ? std::max(0.1, 1.0 + negate(level * 0.9)) : level * 1.8 + 0.1;
        break;
      case RaOp::shear_x: case RaOp::shear_y: o.arg = negate(level * 0.3); break;
      case RaOp::translate_x_rel: case RaOp::translate_y_rel: o.arg = negate(level * 0.45); break;
    }
    const bool geometric = op == RaOp::rotate || op == RaOp::shear_x || op == RaOp::shear_y ||
                           op == RaOp::translate_x_rel || op == RaOp::translate_y_rel;
    if (geometric && !interpolation) o.resample = rd.randint(0, 1) ? Interp::bicubic : Interp::bilinear;
    p.ops.push_back(o);
  }
  return p;
}

Image RandAugment::apply(const Image& im, const RandAugmentParams& p) const {
  if (im.channels != 3) throw std::invalid_argument("RandAugment: expected an RGB image, got " + std::to_string(im.channels) + " channels");
  Image out = im;
  for (const RaOpParams& o : p.ops) out = ra_apply_op(out, o, fill);
  return out;
}

}  // namespace rv::data
