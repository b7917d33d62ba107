// image_pipeline.h: the whole per-image preprocessing of the timm / DeiT recipes, file bytes in,
// normalised (3, S, S) float tensor out.
//
//   train:  decode -> RandomResizedCrop(S) -> hflip(p) -> one of
//             none:           ColorJitter(cj, cj, cj)              (timm without --aa)
//             three_augment:  grayscale | solarize | blur, then ColorJitter(cj)  (DeiT III --aa 3a)
//             rand_augment:   RandAugment("rand-m9-mstd0.5-inc1")   (timm --aa; no jitter, as timm)
//           -> ToTensor + Normalize -> RandomErasing (reprob; 0 = off)
//   eval:   decode -> Resize(floor(S / crop_pct)) of the short side -> CenterCrop(S) -> normalise
//           (the spec: ViT crop_pct 1.0, Swin 0.875, timm's pretrained configs 0.9)
//
// Region decode: the JPEG rows and columns outside the crop are never transformed (roi_decode;
// same pixels, data/decode_jpeg_roi.h).
// Scaled JPEG decode: train samples the crop on the header's full size first, then decodes at
// the smallest 1/2, 1/4, 1/8 scale at which the crop still has at least S x S pixels (so the
// resize that follows still shrinks, antialiased); the crop box is mapped to the scaled image.
// With data.resize = fast the scales are libjpeg-turbo's M / 8 (TrainTransformOptions::
// fast_decode_scales) and the crop is mapped to the sub-pixel: the resize takes the float box
// (resize_box_into, Pillow's box argument), so the crop's geometry is the exact path's.
// That is a different (slightly softer) resampling chain than PIL's, so it is an option: on for
// training by default (speed; augmentation noise dwarfs it), off for evaluation by default so
// that reported accuracy uses exactly the reference preprocessing.
//
// EXIF orientation: applied by default (a phone photo shown upright). torchvision's / timm's
// default loader (PIL Image.open + convert("RGB")) does NOT apply it; set exif_orientation = false
// to reproduce their pixels exactly on such files (ImageNet has very few of them).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/decode_image.h"
#include "data/image_ops.h"
#include "data/rand_augment.h"
#include "data/tensor_transforms.h"  // chw::erase_

namespace rv::data {

enum class TrainAugment { none, three_augment, rand_augment };
TrainAugment train_augment_from_name(const std::string& name);  // "none" | "3a" | "rand-..." (a RandAugment spec)

struct TrainTransformOptions {
  int size = 224;
  RandomResizedCropOptions rrc;
  Interp interp = Interp::bicubic;
  // The crop's resize arithmetic (pil_resize.h). fast by default: every byte within 1 grey level
  // of Pillow's (what Pillow-SIMD users of timm get), about half the resize time; far below the
  // augmentation's own noise, like scaled_decode. exact reproduces torchvision's bytes. The
  // evaluation chain has no such option: it always resizes exactly.
  ResizeMode resize = ResizeMode::fast;
  double hflip = 0.5;
  TrainAugment augment = TrainAugment::none;
  float color_jitter = 0.4f;                      // 0: off (none / three_augment only)
  std::string rand_augment = "rand-m9-mstd0.5-inc1";
  RandomErasingOptions erasing = {.probability = 0.0};  // the boxes (augment_params.h)
  chw::EraseMode erase_mode = chw::EraseMode::per_pixel;  // their fill (chw::erase_)
  std::array<float, 3> mean = kImagenetMean, std = kImagenetStd;
  // Scaled JPEG decode (see the top of this file). With resize = exact: 1/2, 1/4, 1/8 on the
  // crop's integer box (as before). With resize = fast: the M / 8 scales listed in
  // fast_decode_scales, the crop mapped to the sub-pixel (fast_decode_eighths() picks M).
  // Why {1, 2, 4} (measured 2026-11-28, libjpeg-turbo 2.1.5, region decode of RandomResizedCrop
  // boxes, thread CPU time, against the full-size region decode of the same boxes; quality: the
  // 224 x 224 resized crop against the exact chain, in grey levels; docs/perf.md, fifth round):
  //   M/8   500x375 photos              1000x750 (photos x2)          2000x1500 (x4)
  //   7/8   1.43x  mean 0.62 max 45     1.51x  mean 0.27 max 16      1.53x  mean 0.14 max 9
  //   6/8   1.22x  mean 0.74 max 41     1.17x  mean 0.28 max 17      1.18x  mean 0.15 max 10
  //   5/8   1.08x  mean 1.03 max 40     1.04x  mean 0.30 max 18      1.04x  mean 0.16 max 11
  //   4/8   -                           0.72x  mean 0.40 max 24      0.69x  mean 0.17 max 13
  //   3/8   -                           0.70x  mean 0.61 max 31      0.68x  mean 0.20 max 18
  //   2/8   -                           -                            0.53x  mean 0.41 max 26
  // (fast resize alone: mean 0.09-0.16, max 1; the decode ratios re-measured with the timing
  // order alternated stay within 0.04.) 3/8 .. 7/8 run libjpeg-turbo's plain-C IDCTs
  // (and chroma through 6x6 .. 14x14 C IDCTs instead of the SIMD 8x8 + upsampling), so 5/8 .. 7/8
  // cost more than the full-size decode and 3/8 no less than 4/8; only the SIMD scales pay.
  // On 500 x 375 files (ImageNet's usual size) no crop reaches 448 px, so nothing is scaled.
  bool scaled_decode = true;
  std::vector<int> fast_decode_scales = {1, 2, 4};
  // JPEG: decode only the crop's rows and columns (data/decode_jpeg_roi.h). The same pixels as
  // the whole decode + crop (tested bit for bit), about half the decode work on average.
  bool roi_decode = true;
  bool exif_orientation = true;
};

struct EvalTransformOptions {
  int size = 224;
  double crop_pct = 1.0;
  Interp interp = Interp::bicubic;
  std::array<float, 3> mean = kImagenetMean, std = kImagenetStd;
  bool scaled_decode = false;
  bool exif_orientation = true;
};

// The random part of one training sample, drawn before decoding (only the header is read).
struct TrainParams {
  CropBox crop;                // on the full-size image
  bool flip = false;
  std::optional<ColorJitterParams> jitter;
  std::optional<ThreeAugmentParams> three;
  std::optional<RandAugmentParams> rand_augment;
  std::vector<CropBox> erase;  // on the S x S output
};
TrainParams train_params(int height, int width, const TrainTransformOptions& opt, const RandAugment* ra, RandomDraws& rd);

// The decode step of train_transform alone (exposed for `ropevit bench data`): the pixels the
// crop needs, decoded as opt says (scaled, region), for a crop drawn on the full-size `info`.
// `box` receives the crop's whole pixels in the returned image (all of it when roi_decode
// applies), `sub` the sub-pixel rectangle to resize, relative to box's top-left (all of box
// except on fast mode's M / 8 path).
Image train_decode(const uint8_t* data, size_t size, const std::string& label, const ImageInfo& info,
                   const TrainTransformOptions& opt, const CropBox& crop, CropBox& box, ResizeBox& sub);

// Fast mode's DCT scale for a crop (full-size pixels) resized to size x size: the smallest M of
// `scales` (each 1..8) at which the scaled crop, crop * M / 8, is still >= size pixels both ways
// (the resize then still shrinks: never an upsample); 8 (full size) when none is.
int fast_decode_eighths(const CropBox& crop, int size, const std::vector<int>& scales);

// Bytes of one image file -> (3, S, S) f32. `label` names the file in errors. `ra` is the parsed
// RandAugment of opt.rand_augment (parse it once: RandAugment::parse), used when augment is
// rand_augment.
Tensor train_transform(const uint8_t* data, size_t size, const std::string& label, const TrainTransformOptions& opt,
                       const RandAugment* ra, RandomDraws& rd);
Tensor eval_transform(const uint8_t* data, size_t size, const std::string& label, const EvalTransformOptions& opt);
// The eval transform from a decoded image (the exact reference chain).
Tensor eval_transform(const Image& im, const EvalTransformOptions& opt);
// The same transforms written into `out`, a contiguous f32 (3, S, S) tensor (one row of the
// loader's batch: Dataset::get_into), instead of a new tensor.
void train_transform_into(const uint8_t* data, size_t size, const std::string& label, const TrainTransformOptions& opt,
                          const RandAugment* ra, RandomDraws& rd, const Tensor& out);
void eval_transform_into(const uint8_t* data, size_t size, const std::string& label, const EvalTransformOptions& opt,
                         const Tensor& out);
void eval_transform_into(const Image& im, const EvalTransformOptions& opt, const Tensor& out);

}  // namespace rv::data
