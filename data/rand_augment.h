// rand_augment.h: timm's RandAugment ("rand-m9-mstd0.5-inc1"), its 15 PIL operations with
// PIL's pixels, and timm's config-string parsing.
//
// Per image: n ops are chosen uniformly with replacement; each runs with probability p; its
// magnitude is N(m, mstd) clipped to [0, mmax (10)], mapped to the op's argument by timm's
// level functions (some negated with probability 1/2); the geometric ops pick their resampling
// filter per op (bilinear or bicubic at random unless the pipeline names one) and fill uncovered
// pixels with the ImageNet mean colour (124, 116, 104).
//
//   config:  rand-m<M>-n<N>-p<P>-mstd<S>-mmax<X>-inc<0|1>   (sections in any order; mstd > 100
//            means uniform in [0, M]); "t<name>" transform sets and weights are not supported
//   ops (inc1, increasing severity): AutoContrast Equalize Invert Rotate PosterizeIncreasing
//            SolarizeIncreasing SolarizeAdd ColorIncreasing ContrastIncreasing BrightnessIncreasing
//            SharpnessIncreasing ShearX ShearY TranslateXRel TranslateYRel
//   (inc0 swaps the *Increasing ops for Posterize, Solarize, Color, Contrast, Brightness, Sharpness)
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "data/augment_random.h"
#include "data/image.h"
#include "data/pil_resize.h"

namespace rv::data {

enum class RaOp {
  auto_contrast, equalize, invert, rotate, posterize, solarize, solarize_add, color, contrast, brightness, sharpness,
  shear_x, shear_y, translate_x_rel, translate_y_rel
};
const char* ra_op_name(RaOp op);

// One sampled op: its kind and argument (degrees, bits, threshold, factor, shear or fraction of
// the image size), and the resampling filter of the geometric ops.
struct RaOpParams {
  RaOp op = RaOp::invert;
  double arg = 0;
  Interp resample = Interp::bicubic;
};
struct RandAugmentParams {
  std::vector<RaOpParams> ops;  // the ops that fire, in order
};

class RandAugment {
 public:
  // Parses timm's config string; errors name the section that is wrong.
  static RandAugment parse(const std::string& config);
  // timm's hparams: the fill colour of the geometric ops and, when set, one resampling filter
  // (timm: the pipeline's interpolation unless it is "random").
  std::array<uint8_t, 3> fill = {124, 116, 104};
  std::optional<Interp> interpolation;

  RandAugmentParams params(RandomDraws& rd) const;
  Image apply(const Image& im, const RandAugmentParams& p) const;

  int num_layers = 2;
  double magnitude = 10, magnitude_std = 0, magnitude_max = 10, prob = 0.5;
  bool increasing = false;
  std::vector<RaOp> ops;  // the op set (15)
};

// The single ops, usable alone (each as the PIL / timm function of the same name).
Image ra_apply_op(const Image& im, const RaOpParams& op, const std::array<uint8_t, 3>& fill);
Image auto_contrast(const Image& im);
Image equalize(const Image& im);
Image invert(const Image& im);
Image posterize(const Image& im, int bits);
Image solarize_add(const Image& im, int add, int threshold = 128);
Image sharpness(const Image& im, float factor);
// PIL Image.transform(size, AFFINE, (a, b, c, d, e, f), resample, fillcolor): output pixel
// (x, y) samples the input at (a x' + b y' + c, d x' + e y' + f), x' = x + 0.5.
Image affine(const Image& im, const std::array<double, 6>& m, Interp resample, const std::array<uint8_t, 3>& fill);
Image rotate(const Image& im, double degrees, Interp resample, const std::array<uint8_t, 3>& fill);

}  // namespace rv::data
