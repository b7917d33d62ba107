// dino_geometry.cpp: valid ratios, encoder reference points, per-pixel proposals and inverse_sigmoid
// (dino_geometry.h). Host loops in f32, in detrex's order of operations.
#include "models/det/dino_geometry.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/math.h"

namespace rv::models::det {

namespace {

Tensor host_bool(const Tensor& m) { return (m.device().is_cpu() ? m : m.cpu()).contiguous(); }

// Valid rows (from column 0) and columns (from row 0) of image b of a (B, H, W) mask.
std::pair<int64_t, int64_t> valid_hw(const bool* m, int64_t b, int64_t H, int64_t W) {
  int64_t vh = 0, vw = 0;
  for (int64_t y = 0; y < H; ++y) vh += m[(b * H + y) * W] ? 0 : 1;
  for (int64_t x = 0; x < W; ++x) vw += m[b * H * W + x] ? 0 : 1;
  return {vh, vw};
}

}  // namespace

Tensor valid_ratios(const std::vector<Tensor>& masks, DType dtype) {
  if (masks.empty()) throw std::invalid_argument("valid_ratios: expected at least one level mask");
  const int64_t L = int64_t(masks.size()), B = masks[0].dim() == 3 ? masks[0].size(0) : -1;
  std::vector<float> r(size_t(B > 0 ? B * L * 2 : 0));
  for (int64_t l = 0; l < L; ++l) {
    const Tensor& m = masks[size_t(l)];
    if (m.dim() != 3 || m.size(0) != B || m.dtype() != DType::boolean)
      throw std::invalid_argument("valid_ratios: expected bool masks (B, H, W) with one B, got level " +
                                  std::to_string(l) + ": " + dtype_name(m.dtype()) + " " + shape_str(m.shape()));
    const Tensor h = host_bool(m);
    const int64_t H = m.size(1), W = m.size(2);
    for (int64_t b = 0; b < B; ++b) {
      const auto [vh, vw] = valid_hw(h.data<bool>(), b, H, W);
      r[size_t((b * L + l) * 2)] = float(vw) / float(W);
      r[size_t((b * L + l) * 2 + 1)] = float(vh) / float(H);
    }
  }
  Tensor out = from_vector(r, {B, L, 2});
  return dtype == DType::f32 ? out : out.to(dtype);
}

Tensor encoder_reference_points(const LevelShapes& shapes, const Tensor& ratios) {
  const int64_t L = int64_t(shapes.size());
  if (ratios.dim() != 3 || ratios.size(1) != L || ratios.size(2) != 2)
    throw std::invalid_argument("encoder_reference_points: expected valid_ratios (B, " + std::to_string(L) +
                                ", 2), got " + shape_str(ratios.shape()));
  const int64_t B = ratios.size(0);
  int64_t S = 0;
  for (auto [H, W] : shapes) S += H * W;
  const std::vector<float> vr = [&] {
    const std::vector<double> d = ratios.cpu().to_double_vector();
    return std::vector<float>(d.begin(), d.end());
  }();
  std::vector<float> out(size_t(B * S * L * 2));
  for (int64_t b = 0; b < B; ++b) {
    int64_t s = 0;
    for (int64_t lv = 0; lv < L; ++lv) {
      const auto [H, W] = shapes[size_t(lv)];
      const float rw = vr[size_t((b * L + lv) * 2)], rh = vr[size_t((b * L + lv) * 2 + 1)];
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x, ++s) {
          // the pixel centre in units of the valid part of its own level ...
          const float px = (float(x) + 0.5f) / (rw * float(W)), py = (float(y) + 0.5f) / (rh * float(H));
          // ... then scaled into the valid part of every level
          for (int64_t l = 0; l < L; ++l) {
            const size_t o = size_t(((b * S + s) * L + l) * 2);
            out[o] = px * vr[size_t((b * L + l) * 2)];
            out[o + 1] = py * vr[size_t((b * L + l) * 2 + 1)];
          }
        }
    }
  }
  Tensor t = from_vector(out, {B, S, L, 2});
  if (ratios.dtype() != DType::f32) t = t.to(ratios.dtype());
  return ratios.device().is_cpu() ? t : t.to(ratios.device());
}

EncoderProposals encoder_proposals(const Tensor& mask_flatten, const LevelShapes& shapes, DType dtype) {
  int64_t S = 0;
  for (auto [H, W] : shapes) S += H * W;
  if (mask_flatten.dim() != 2 || mask_flatten.size(1) != S || mask_flatten.dtype() != DType::boolean)
    throw std::invalid_argument("encoder_proposals: expected a bool mask_flatten (B, " + std::to_string(S) +
                                ") for the levels' sizes, got " + dtype_name(mask_flatten.dtype()) + " " +
                                shape_str(mask_flatten.shape()));
  const int64_t B = mask_flatten.size(0);
  const Tensor m = host_bool(mask_flatten);
  const bool* mp = m.data<bool>();
  std::vector<float> prop(size_t(B * S * 4));
  Tensor keep = empty({B, S}, DType::boolean);
  bool* kp = keep.data<bool>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t start = 0;
    for (size_t lv = 0; lv < shapes.size(); ++lv) {
      const auto [H, W] = shapes[lv];
      const bool* ml = mp + b * S + start;
      int64_t vh = 0, vw = 0;
      for (int64_t y = 0; y < H; ++y) vh += ml[y * W] ? 0 : 1;
      for (int64_t x = 0; x < W; ++x) vw += ml[x] ? 0 : 1;
      const float wh = 0.05f * float(std::pow(2.0, double(lv)));
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t s = start + y * W + x;
          // valid_W or valid_H of 0 (an all-padding level) gives inf / nan: not kept either way
          const float p[4] = {(float(x) + 0.5f) / float(vw), (float(y) + 0.5f) / float(vh), wh, wh};
          bool ok = !mp[b * S + s];
          for (float v : p) ok = ok && v > 0.01f && v < 0.99f;
          kp[b * S + s] = ok;
          for (int k = 0; k < 4; ++k)
            prop[size_t((b * S + s) * 4 + k)] = ok ? std::log(p[k] / (1.0f - p[k])) : INFINITY;
        }
      start += H * W;
    }
  }
  Tensor t = from_vector(prop, {B, S, 4});
  if (dtype != DType::f32) t = t.to(dtype);
  if (!mask_flatten.device().is_cpu()) {
    t = t.to(mask_flatten.device());
    keep = keep.to(mask_flatten.device());
  }
  return {t, keep};
}

Tensor inverse_sigmoid(const Tensor& x, double eps) {
  const Tensor c = clamp(x, 0.0, 1.0);
  return log(div(clamp(c, eps, std::nullopt), clamp(sub(1.0, c), eps, std::nullopt)));
}

}  // namespace rv::models::det
