// mixup.cpp: Mixup / CutMix and the random draws they use (see mixup.h).
#include "data/mixup.h"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "data/random_draws.h"

namespace rv::data {

double sample_gamma(double shape, Generator& gen) {
  if (!(shape > 0.0)) throw std::invalid_argument("sample_gamma: shape must be > 0, got " + std::to_string(shape));
  // shape < 1: Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang's boost).
  if (shape < 1.0) {
    const double g = sample_gamma(shape + 1.0, gen);
    const double u = 1.0 - draw_uniform01(gen);  // (0, 1]
    return g * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    // A standard normal by Box-Muller (one of the pair; the other is not kept, to keep the
    // number of draws per loop fixed and the code plain).
    const double u1 = 1.0 - draw_uniform01(gen), u2 = draw_uniform01(gen);
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    double v = 1.0 + c * z;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = 1.0 - draw_uniform01(gen);
    if (std::log(u) < 0.5 * z * z + d - d * v + d * std::log(v)) return d * v;
  }
}

double sample_beta(double a, double b, Generator& gen) {
  const double x = sample_gamma(a, gen), y = sample_gamma(b, gen);
  return x / (x + y);
}

CutmixBox rand_bbox(int64_t H, int64_t W, double lam, Generator& gen) {
  const double ratio = std::sqrt(1.0 - lam);
  const int64_t cut_h = int64_t(double(H) * ratio), cut_w = int64_t(double(W) * ratio);
  const int64_t cy = draw_int(gen, 0, H - 1), cx = draw_int(gen, 0, W - 1);  // np.random.randint(0, H)
  auto clip = [](int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); };
  return {clip(cy - cut_h / 2, H), clip(cy + cut_h / 2, H), clip(cx - cut_w / 2, W), clip(cx + cut_w / 2, W)};
}

Tensor mixup_target(const Tensor& labels, int64_t num_classes, double lam, double smoothing) {
  if (labels.dim() != 1) throw std::invalid_argument("mixup_target: labels must be (B,)");
  if (num_classes < 1) throw std::invalid_argument("mixup_target: num_classes must be >= 1");
  const std::vector<double> y = labels.to_double_vector();
  const int64_t B = int64_t(y.size()), K = num_classes;
  const float off = float(smoothing / double(K)), on = float(1.0 - smoothing + smoothing / double(K));
  Tensor t = zeros({B, K});
  float* p = t.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t y1 = int64_t(y[size_t(b)]), y2 = int64_t(y[size_t(B - 1 - b)]);
    if (y1 < 0 || y1 >= K) throw std::out_of_range("mixup_target: label " + std::to_string(y1) + " of row " +
                                                   std::to_string(b) + " is outside 0.." + std::to_string(K - 1));
    for (int64_t k = 0; k < K; ++k) {
      const float a = k == y1 ? on : off, c = k == y2 ? on : off;
      p[b * K + k] = float(a * lam + c * (1.0 - lam));
    }
  }
  return t;
}

Mixup::Mixup(MixupOptions options) : opt_(std::move(options)) {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("Mixup: " + what);
  };
  check(opt_.mixup_alpha >= 0.0, "aug.mixup (alpha) must be >= 0");
  check(opt_.cutmix_alpha >= 0.0, "aug.cutmix (alpha) must be >= 0");
  check(opt_.prob >= 0.0 && opt_.prob <= 1.0, "aug.mixup_prob must be in [0, 1]");
  check(opt_.switch_prob >= 0.0 && opt_.switch_prob <= 1.0, "aug.mixup_switch_prob must be in [0, 1]");
  check(opt_.mode == "batch", "aug.mixup_mode '" + opt_.mode +
                                  "' is not implemented (only \"batch\": one lam and box per batch)");
  check(opt_.num_classes >= 1, "num_classes must be >= 1");
  check(opt_.label_smoothing >= 0.0 && opt_.label_smoothing < 1.0, "label smoothing must be in [0, 1)");
}

MixedBatch Mixup::apply(const Tensor& images, const Tensor& labels, Generator& gen) const {
  if (images.dim() != 4 || images.dtype() != DType::f32)
    throw std::invalid_argument("Mixup: images must be float32 (B, C, H, W)");
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  if (labels.dim() != 1 || labels.size(0) != B)
    throw std::invalid_argument("Mixup: labels must be (B,) with B = " + std::to_string(B));
  if (B % 2 != 0)
    throw std::invalid_argument("Mixup: the batch size must be even, got " + std::to_string(B) +
                                " (each sample is mixed with its mirror in the batch)");
  MixedBatch out;
  out.images = images.clone();
  bool mix = false;
  if (enabled() && draw_uniform01(gen) < opt_.prob) {
    mix = true;
    double alpha = opt_.mixup_alpha;
    if (opt_.mixup_alpha > 0.0 && opt_.cutmix_alpha > 0.0) {
      out.cutmix = draw_uniform01(gen) < opt_.switch_prob;
      alpha = out.cutmix ? opt_.cutmix_alpha : opt_.mixup_alpha;
    } else if (opt_.cutmix_alpha > 0.0) {
      out.cutmix = true;
      alpha = opt_.cutmix_alpha;
    }
    out.lam = double(float(sample_beta(alpha, alpha, gen)));  // timm keeps lam as float(...)
  }
  if (mix && out.lam != 1.0) {
    const Tensor x = images.contiguous();
    const float* src = x.data<float>();
    float* dst = out.images.data<float>();
    const int64_t per = C * H * W;
    if (out.cutmix) {
      out.box = rand_bbox(H, W, out.lam, gen);
      const CutmixBox& bx = out.box;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = bx.y0; y < bx.y1; ++y)
            for (int64_t xw = bx.x0; xw < bx.x1; ++xw)
              dst[b * per + (c * H + y) * W + xw] = src[(B - 1 - b) * per + (c * H + y) * W + xw];
      if (opt_.correct_lam) out.lam = 1.0 - double((bx.y1 - bx.y0) * (bx.x1 - bx.x0)) / double(H * W);
    } else {
      const float l = float(out.lam), m = float(1.0 - out.lam);
      for (int64_t b = 0; b < B; ++b) {
        const float* p = src + b * per;
        const float* q = src + (B - 1 - b) * per;
        float* o = dst + b * per;
        for (int64_t i = 0; i < per; ++i) o[i] = p[i] * l + q[i] * m;
      }
    }
  }
  out.targets = mixup_target(labels, opt_.num_classes, out.lam, opt_.label_smoothing);
  return out;
}

}  // namespace rv::data
