// mixup.h: Mixup and CutMix on a training batch, with timm's semantics (timm.data.Mixup,
// mode "batch"), and the soft targets they need.
//
//   Mixup mix({.mixup_alpha = 0.8, .cutmix_alpha = 1.0, .label_smoothing = 0.1, .num_classes = 1000});
//   MixedBatch m = mix.apply(images, labels, gen);   // m.images (B, C, H, W), m.targets (B, K)
//
// One draw per batch (all from `gen`, in this order):
//   u0 < prob ? mix : return the batch unchanged (lam = 1, targets = smoothed one-hot)
//   both alphas > 0: CutMix when u1 < switch_prob; lam ~ Beta(alpha, alpha) of the chosen one
//   Mixup:  x[b] = lam * x[b] + (1 - lam) * x[B-1-b]     (the batch mixed with its reverse)
//   CutMix: a box of area ~ (1 - lam) H W, centre (cy, cx) uniform over the image, clipped at
//           the border, is pasted from x[B-1-b] into x[b]; lam is then corrected to
//           1 - box area / (H W), the share of pixels really kept (timm's correct_lam)
//   targets[b] = lam * smooth(y[b]) + (1 - lam) * smooth(y[B-1-b]),
//           smooth(y) = one-hot with (1 - s + s/K) at y and s/K elsewhere (s = label smoothing)
// The batch size must be even (timm asserts it: a sample would be mixed with itself).
// Everything random comes from the Generator, so a batch's mix depends only on the
// generator's (seed, stream, offset): the trainer gives each batch its own stream.
#pragma once
#include <cstdint>
#include <string>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::data {

struct MixupOptions {
  double mixup_alpha = 0.0;   // Beta(alpha, alpha) for Mixup; 0 = off
  double cutmix_alpha = 0.0;  // Beta(alpha, alpha) for CutMix; 0 = off
  double prob = 1.0;          // probability of mixing a batch at all
  double switch_prob = 0.5;   // with both on: probability of CutMix
  std::string mode = "batch"; // only "batch" (one draw per batch) is implemented
  bool correct_lam = true;    // CutMix: lam from the clipped box's real area
  double label_smoothing = 0.0;
  int64_t num_classes = 0;
};

struct CutmixBox {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // rows [y0, y1), columns [x0, x1)
};

struct MixedBatch {
  Tensor images;   // (B, C, H, W) float32, a new tensor
  Tensor targets;  // (B, K) float32 soft targets
  double lam = 1.0;
  bool cutmix = false;
  CutmixBox box;   // CutMix only
};

class Mixup {
 public:
  explicit Mixup(MixupOptions options);  // throws naming the option on a bad value
  bool enabled() const { return opt_.mixup_alpha > 0.0 || opt_.cutmix_alpha > 0.0; }
  const MixupOptions& options() const { return opt_; }
  // images (B, C, H, W) float32, labels (B,) integer in [0, K).
  MixedBatch apply(const Tensor& images, const Tensor& labels, Generator& gen) const;

 private:
  MixupOptions opt_;
};

// lam * smooth(y) + (1 - lam) * smooth(flip(y)) as (B, K) float32 (see above).
Tensor mixup_target(const Tensor& labels, int64_t num_classes, double lam, double smoothing);

// timm's rand_bbox: cut = int(side * sqrt(1 - lam)) per side, centre uniform in [0, side),
// the box clipped to the image. Draws two integers from `gen`.
CutmixBox rand_bbox(int64_t H, int64_t W, double lam, Generator& gen);

// Beta and Gamma draws from a Generator (uniforms from data/random_draws.h).
double sample_gamma(double shape, Generator& gen);       // Gamma(shape, 1), Marsaglia-Tsang
double sample_beta(double a, double b, Generator& gen);  // X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b)

}  // namespace rv::data
