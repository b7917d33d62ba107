// scenes.cpp: the synthetic scene generator: textured background, items scaled (bilinear),
// tinted and blended in, their visible masks, boxes and areas, and the label map.
#include "data/scenes.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "data/random_draws.h"

namespace rv::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// A cheap per-pixel hash for background grain (Philox per pixel would be 10x the cost of the scene).
uint32_t grain(uint64_t key, int64_t y, int64_t x) {
  uint64_t h = key ^ (uint64_t(y) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(x) * 0xC2B2AE3D27D4EB4Full);
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return uint32_t(h);
}

uint8_t clamp_u8(double v) { return uint8_t(std::clamp(std::lround(v), 0l, 255l)); }

// The background: two colours mixed by one of three patterns (stripes, checks, smooth waves),
// plus grain, so that the items are not found by their flat surroundings.
void paint_background(Scene& s, Generator& g) {
  std::array<double, 3> c0{}, c1{};
  for (int c = 0; c < 3; ++c) {
    c0[size_t(c)] = draw_uniform(g, 0, 130);
    c1[size_t(c)] = draw_uniform(g, 0, 130);
  }
  const int64_t pattern = draw_int(g, 0, 2);
  const double angle = draw_uniform(g, 0, kPi), freq = draw_uniform(g, 0.03, 0.25);
  const int64_t cell = draw_int(g, 8, 40);
  const double fx = draw_uniform(g, 0.01, 0.06), fy = draw_uniform(g, 0.01, 0.06), ph = draw_uniform(g, 0, 2 * kPi);
  const uint64_t key = uint64_t(draw_int(g, 0, INT64_MAX));
  const double ca = std::cos(angle), sa = std::sin(angle);
  for (int64_t y = 0; y < s.height; ++y)
    for (int64_t x = 0; x < s.width; ++x) {
      double t;
      if (pattern == 0) t = 0.5 + 0.5 * std::sin(freq * (ca * double(x) + sa * double(y)));
      else if (pattern == 1) t = double(((x / cell) + (y / cell)) % 2);
      else t = 0.5 + 0.25 * std::sin(fx * double(x) + ph) + 0.25 * std::cos(fy * double(y) - ph);
      const double noise = double(grain(key, y, x) % 33) - 16.0;
      uint8_t* p = &s.rgb[size_t((y * s.width + x) * 3)];
      for (int c = 0; c < 3; ++c) p[c] = clamp_u8(c0[size_t(c)] * (1 - t) + c1[size_t(c)] * t + noise);
    }
}

// Item `k` (h, w) resized to (oh, ow), bilinear with half-pixel centres (align_corners = false).
std::vector<uint8_t> resize_item(const uint8_t* src, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  std::vector<uint8_t> out(size_t(oh * ow));
  for (int64_t y = 0; y < oh; ++y) {
    const double sy = std::clamp((double(y) + 0.5) * double(h) / double(oh) - 0.5, 0.0, double(h - 1));
    const int64_t y0 = int64_t(sy), y1 = std::min(y0 + 1, h - 1);
    const double wy = sy - double(y0);
    for (int64_t x = 0; x < ow; ++x) {
      const double sx = std::clamp((double(x) + 0.5) * double(w) / double(ow) - 0.5, 0.0, double(w - 1));
      const int64_t x0 = int64_t(sx), x1 = std::min(x0 + 1, w - 1);
      const double wx = sx - double(x0);
      const double v = (1 - wy) * ((1 - wx) * src[y0 * w + x0] + wx * src[y0 * w + x1]) +
                       wy * ((1 - wx) * src[y1 * w + x0] + wx * src[y1 * w + x1]);
      out[size_t(y * ow + x)] = clamp_u8(v);
    }
  }
  return out;
}

struct Placed {
  int64_t label;
  bool crowd;
  std::vector<uint8_t> mask;  // (H, W) its own foreground, before later items cover it
};

double box_iou(const std::array<int64_t, 4>& a, const std::array<int64_t, 4>& b) {
  const int64_t iw = std::max<int64_t>(0, std::min(a[0] + a[2], b[0] + b[2]) - std::max(a[0], b[0]));
  const int64_t ih = std::max<int64_t>(0, std::min(a[1] + a[3], b[1] + b[3]) - std::max(a[1], b[1]));
  const double inter = double(iw * ih);
  return inter / (double(a[2] * a[3] + b[2] * b[3]) - inter);
}

}  // namespace

SceneGenerator::SceneGenerator(Tensor items, Tensor labels, SceneOptions options)
    : items_(items.contiguous()), labels_(labels.contiguous()), opt_(options) {
  if (items_.dtype() != DType::u8 || items_.dim() != 3 || items_.size(0) < 1)
    throw std::invalid_argument("SceneGenerator: items: expected u8 (N, h, w) with N >= 1");
  if (labels_.dtype() != DType::i64 || labels_.dim() != 1 || labels_.size(0) != items_.size(0))
    throw std::invalid_argument("SceneGenerator: labels: expected i64 (N,) matching the items");
  for (int64_t i = 0; i < labels_.numel(); ++i)
    if (labels_.data<int64_t>()[i] < 0 || labels_.data<int64_t>()[i] >= int64_t(kSceneCategoryIds.size()))
      throw std::invalid_argument("SceneGenerator: labels: expected values in 0..9, got " +
                                  std::to_string(labels_.data<int64_t>()[i]) + " at " + std::to_string(i));
  if (opt_.size < 64 || opt_.size > 4096)
    throw std::invalid_argument("SceneGenerator: size: expected 64..4096, got " + std::to_string(opt_.size));
  if (opt_.min_item < 8 || opt_.min_item > opt_.size / 2)
    throw std::invalid_argument("SceneGenerator: min_item: expected 8..size/2, got " + std::to_string(opt_.min_item));
  if (opt_.max_items < 1) throw std::invalid_argument("SceneGenerator: max_items: expected >= 1");
}

Scene SceneGenerator::make(uint64_t seed, int64_t split, int64_t index) const {
  if (split < 0 || split > 255 || index < 0 || index >= (int64_t(1) << 40))
    throw std::invalid_argument("SceneGenerator::make: split 0..255 and index 0..2^40 expected");
  // Bit 62 keeps these streams apart from the loader's (sample streams have bit 63 set).
  Generator g(seed, (uint64_t(1) << 62) | (uint64_t(split) << 40) | uint64_t(index));
  Scene s;
  const int64_t n = opt_.size;
  const bool shrink_h = draw_bernoulli(g, 0.5);
  const int64_t other = int64_t(std::lround(double(n) * draw_uniform(g, 0.75, 1.0)));
  s.height = shrink_h ? other : n;
  s.width = shrink_h ? n : other;
  const int64_t H = s.height, W = s.width;
  s.rgb.assign(size_t(H * W * 3), 0);
  paint_background(s, g);

  const int64_t ih = items_.size(1), iw = items_.size(2);
  const uint8_t* items = items_.data<uint8_t>();
  const int64_t* labels = labels_.data<int64_t>();
  const int64_t n_items_total = items_.size(0);
  std::vector<Placed> placed;

  // Pastes item k scaled to (oh, ow) at (y0, x0): blends a tint with the pixel value as opacity,
  // and marks the foreground in `mask`.
  auto paste = [&](int64_t k, int64_t y0, int64_t x0, int64_t oh, int64_t ow, const std::array<double, 3>& tint,
                   std::vector<uint8_t>& mask) {
    const std::vector<uint8_t> px = resize_item(items + k * ih * iw, ih, iw, oh, ow);
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t yy = y0 + y, xx = x0 + x;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const uint8_t v = px[size_t(y * ow + x)];
        const double a = double(v) / 255.0;
        uint8_t* p = &s.rgb[size_t((yy * W + xx) * 3)];
        for (int c = 0; c < 3; ++c) p[c] = clamp_u8(double(p[c]) * (1 - a) + tint[size_t(c)] * a);
        if (v > kMaskThreshold) mask[size_t(yy * W + xx)] = 1;
      }
  };
  auto draw_tint = [&]() {
    std::array<double, 3> t{};
    for (auto& c : t) c = draw_uniform(g, 110, 255);  // mostly brighter than the background (0..130 + grain)
    return t;
  };

  const bool empty = draw_bernoulli(g, 0.1);
  if (!empty && draw_bernoulli(g, 1.0 / 6)) {
    // A crowd group: several small items of one class in one region, annotated as one.
    const int64_t first = draw_int(g, 0, n_items_total - 1);
    const int64_t cls = labels[first];
    const int64_t count = draw_int(g, 3, 5);
    const int64_t side = std::max<int64_t>(8, opt_.min_item * 2 / 3);
    const int64_t region = std::min<int64_t>(std::min(H, W), side * 3);
    const int64_t ry = draw_int(g, 0, H - region), rx = draw_int(g, 0, W - region);
    const auto tint = draw_tint();
    Placed p{cls, true, std::vector<uint8_t>(size_t(H * W), 0)};
    for (int64_t m = 0; m < count; ++m) {
      // an item of the same class: the next one of that class after a random start
      int64_t k = draw_int(g, 0, n_items_total - 1);
      for (int64_t t = 0; t < n_items_total && labels[k] != cls; ++t) k = (k + 1) % n_items_total;
      if (labels[k] != cls) k = first;
      paste(k, ry + draw_int(g, 0, region - side), rx + draw_int(g, 0, region - side), side, side, tint, p.mask);
    }
    placed.push_back(std::move(p));
  }

  const int64_t count = empty ? 0 : draw_int(g, 1, opt_.max_items);
  std::vector<std::array<int64_t, 4>> boxes;
  for (int64_t m = 0; m < count; ++m) {
    const int64_t k = draw_int(g, 0, n_items_total - 1);
    const int64_t side = draw_int(g, opt_.min_item, std::min(H, W) / 2);
    const int64_t oh = side, ow = std::clamp<int64_t>(std::lround(double(side) * draw_uniform(g, 0.8, 1.25)), 8, W);
    // Up to 10 places, keeping the first whose box overlaps every earlier one by IoU < 0.3.
    std::array<int64_t, 4> box{};
    for (int t = 0; t < 10; ++t) {
      box = {draw_int(g, 0, W - ow), draw_int(g, 0, H - oh), ow, oh};
      bool ok = true;
      for (const auto& b : boxes) ok = ok && box_iou(box, b) < 0.3;
      if (ok) break;
    }
    boxes.push_back(box);
    Placed p{labels[k], false, std::vector<uint8_t>(size_t(H * W), 0)};
    paste(k, box[1], box[0], oh, ow, draw_tint(), p.mask);
    placed.push_back(std::move(p));
  }

  // Later items cover earlier ones: the label map is painted in order, and each object keeps
  // the pixels where it is the last painter.
  std::vector<int16_t> owner(size_t(H * W), -1);
  for (size_t o = 0; o < placed.size(); ++o)
    for (size_t p = 0; p < owner.size(); ++p)
      if (placed[o].mask[p]) owner[p] = int16_t(o);
  s.label_map.assign(size_t(H * W), 0);
  for (size_t p = 0; p < owner.size(); ++p)
    if (owner[p] >= 0) s.label_map[p] = uint8_t(placed[size_t(owner[p])].label + 1);
  for (size_t o = 0; o < placed.size(); ++o) {
    SceneObject obj;
    obj.label = placed[o].label;
    obj.crowd = placed[o].crowd;
    obj.mask.assign(size_t(H * W), 0);
    int64_t x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if (owner[size_t(y * W + x)] == int16_t(o)) {
          obj.mask[size_t(y * W + x)] = 1;
          ++obj.area;
          x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
        }
    if (obj.area == 0) continue;  // fully covered: no pixels left to annotate
    obj.box = {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
    s.objects.push_back(std::move(obj));
  }
  return s;
}

std::pair<Tensor, Tensor> shape_items(int64_t n, uint64_t seed) {
  if (n < 1) throw std::invalid_argument("shape_items: n: expected >= 1, got " + std::to_string(n));
  constexpr int64_t S = 28;
  Tensor items = zeros({n, S, S}, DType::u8), labels = zeros({n}, DType::i64);
  for (int64_t i = 0; i < n; ++i) {
    Generator g(seed, (uint64_t(3) << 61) | uint64_t(i));
    const int64_t k = i % 10;
    labels.data<int64_t>()[i] = k;
    const double r = draw_uniform(g, 8, 12.5), cx = draw_uniform(g, 12.5, 15.5), cy = draw_uniform(g, 12.5, 15.5);
    const double t = r * 0.35;  // stroke half-width
    const uint8_t level = uint8_t(draw_int(g, 160, 255));
    uint8_t* im = items.data<uint8_t>() + i * S * S;
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        const double dx = double(x) + 0.5 - cx, dy = double(y) + 0.5 - cy, d = std::hypot(dx, dy);
        const double ax = std::abs(dx), ay = std::abs(dy);
        bool in = false;
        switch (k) {
          case 0: in = d <= r; break;
          case 1: in = ax <= r * 0.8 && ay <= r * 0.8; break;
          case 2: in = dy <= r * 0.8 && dy >= -r * 0.8 && ax <= (dy + r * 0.8) * 0.6; break;
          case 3: in = d <= r && d >= r - 2 * t; break;
          case 4: in = (ax <= t && ay <= r) || (ay <= t && ax <= r); break;
          case 5: in = ax <= r && ay <= t; break;
          case 6: in = ay <= r && ax <= t; break;
          case 7: in = std::abs(ax - ay) <= t && ax <= r * 0.8; break;
          case 8: in = ax <= r * 0.8 && ay <= r * 0.8 && (ax >= r * 0.8 - t || ay >= r * 0.8 - t); break;
          default: in = d <= r && dy >= 0; break;
        }
        im[y * S + x] = in ? level : 0;
      }
  }
  return {items, labels};
}

}  // namespace rv::data
