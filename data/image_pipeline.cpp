// image_pipeline.cpp: the timm / DeiT train and eval preprocessing chains (see image_pipeline.h).
#include "data/image_pipeline.h"

#include "data/decode_jpeg.h"
#include "data/decode_jpeg_roi.h"
#include "data/fused_color.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace rv::data {

TrainAugment train_augment_from_name(const std::string& name) {
  if (name.empty() || name == "none") return TrainAugment::none;
  if (name == "3a") return TrainAugment::three_augment;
  if (name.rfind("rand", 0) == 0) return TrainAugment::rand_augment;
  throw std::invalid_argument("augmentation: expected \"none\", \"3a\" or a RandAugment config like \"rand-m9-mstd0.5-inc1\", got \"" +
                              name + "\"");
}

TrainParams train_params(int height, int width, const TrainTransformOptions& opt, const RandAugment* ra, RandomDraws& rd) {
  TrainParams p;
  p.crop = random_resized_crop_params(height, width, rd.generator(), opt.rrc);
  p.flip = opt.hflip > 0 && rd.uniform() < opt.hflip;
  switch (opt.augment) {
    case TrainAugment::none:
      if (opt.color_jitter > 0) p.jitter = color_jitter_params({opt.color_jitter, opt.color_jitter, opt.color_jitter, 0}, rd);
      break;
    case TrainAugment::three_augment: p.three = three_augment_params(opt.color_jitter, rd); break;
    case TrainAugment::rand_augment:
      if (!ra) throw std::invalid_argument("train_params: augment is rand_augment but no RandAugment was given");
      p.rand_augment = ra->params(rd);
      break;
  }
  if (opt.erasing.probability > 0) p.erase = random_erasing_boxes(opt.size, opt.size, rd.generator(), opt.erasing);
  return p;
}

namespace {

// The crop box on the full-size image mapped onto the image decoded at ceil(H / d) x ceil(W / d)
// (d = 1: unchanged). It keeps >= opt.size pixels each way by the choice of d.
CropBox scaled_box(const CropBox& crop, int height, int width, int scaled_h, int scaled_w) {
  if (scaled_h == height && scaled_w == width) return crop;
  const double sy = double(scaled_h) / height, sx = double(scaled_w) / width;
  CropBox box;
  box.top = std::min<int64_t>(int64_t(double(crop.top) * sy), scaled_h - 1);
  box.left = std::min<int64_t>(int64_t(double(crop.left) * sx), scaled_w - 1);
  box.height = std::clamp<int64_t>(std::lround(double(crop.height) * sy), 1, scaled_h - box.top);
  box.width = std::clamp<int64_t>(std::lround(double(crop.width) * sx), 1, scaled_w - box.left);
  return box;
}

}  // namespace

int fast_decode_eighths(const CropBox& crop, int size, const std::vector<int>& scales) {
  int best = 8;
  for (int m : scales) {
    if (m < 1 || m > 8)
      throw std::invalid_argument("fast_decode_eighths: a scale is M of M / 8, 1..8, got " + std::to_string(m));
    // The scaled box, in real pixels: never smaller than the output (the resize still shrinks).
    if (m < best && double(crop.height) * m >= 8.0 * size && double(crop.width) * m >= 8.0 * size) best = m;
  }
  return best;
}

Image train_decode(const uint8_t* data, size_t size, const std::string& label, const ImageInfo& info,
                   const TrainTransformOptions& opt, const CropBox& crop, CropBox& box, ResizeBox& sub) {
  DecodeOptions dopt;
  dopt.exif_orientation = opt.exif_orientation;
  const bool jpeg = info.format == ImageFormat::jpeg;
  // Fast mode: libjpeg-turbo's M / 8 DCT scaling, the crop mapped into the scaled image to the
  // sub-pixel (8 full-size pixels are M scaled ones: a block's IDCT at M x M), the resize then
  // taking that float box. Under 16 px a side, neighbouring M can give the same size (and
  // TurboJPEG's fallback decode would pick the larger one): full size there.
  if (jpeg && opt.scaled_decode && opt.resize == ResizeMode::fast && std::min(info.height, info.width) >= 16) {
    const int m = fast_decode_eighths(crop, opt.size, opt.fast_decode_scales);
    const double f = m / 8.0;
    const double y0 = double(crop.top) * f, y1 = double(crop.top + crop.height) * f;
    const double x0 = double(crop.left) * f, x1 = double(crop.left + crop.width) * f;
    const int sh = jpeg_scaled_size(info.height, m), sw = jpeg_scaled_size(info.width, m);
    // The whole scaled pixels the box touches (its hull), decoded; the resize's taps stop at
    // the hull's edges as the exact path's stop at the crop's.
    const int top = int(std::floor(y0)), left = int(std::floor(x0));
    const int bottom = std::min(int(std::ceil(y1)), sh), right = std::min(int(std::ceil(x1)), sw);
    sub = {float(y0 - top), float(x0 - left), float(y1 - top), float(x1 - left)};
    dopt.scale_denom = 8;
    dopt.scale_num = m;
    if (opt.roi_decode) {
      box = {0, 0, bottom - top, right - left};
      return decode_jpeg_crop(data, size, label, top, left, bottom - top, right - left, 8, dopt);
    }
    box = {top, left, bottom - top, right - left};
    return decode_image(data, size, label, dopt);
  }
  int d = 1;
  if (opt.scaled_decode && jpeg) {
    // The smallest decode in which the crop still spans opt.size pixels each way.
    const int min_h = int(std::ceil(double(opt.size) * info.height / crop.height));
    const int min_w = int(std::ceil(double(opt.size) * info.width / crop.width));
    d = jpeg_scale_denominator(info.height, info.width, min_h, min_w);
  }
  if (opt.roi_decode && jpeg) {
    // Only the crop's pixels are decoded (the same bytes as the whole decode, then crop).
    box = scaled_box(crop, info.height, info.width, (info.height + d - 1) / d, (info.width + d - 1) / d);
    Image im = decode_jpeg_crop(data, size, label, int(box.top), int(box.left), int(box.height), int(box.width), d, dopt);
    box = {0, 0, im.height, im.width};
    sub = {0, 0, float(im.height), float(im.width)};
    return im;
  }
  if (jpeg) dopt.scale_denom = d;
  Image im = decode_image(data, size, label, dopt);
  box = scaled_box(crop, info.height, info.width, im.height, im.width);
  sub = {0, 0, float(box.height), float(box.width)};
  return im;
}

void train_transform_into(const uint8_t* data, size_t size, const std::string& label, const TrainTransformOptions& opt,
                          const RandAugment* ra, RandomDraws& rd, const Tensor& out) {
  const ImageInfo info = peek_image(data, size, label, opt.exif_orientation);
  const TrainParams p = train_params(info.height, info.width, opt, ra, rd);
  CropBox box;
  ResizeBox sub;
  const Image im = train_decode(data, size, label, info, opt, p.crop, box, sub);
  const ImageView region = crop_view(im, int(box.top), int(box.left), int(box.height), int(box.width));
  if (p.rand_augment) {
    Image x;
    resize_box_into(region, sub, opt.size, opt.size, opt.interp, x, opt.resize);
    if (p.flip) x = hflip(x);
    x = ra->apply(x, *p.rand_augment);
    to_tensor_normalized_into(x, opt.mean, opt.std, out);
  } else {
    // The same pixels as hflip -> color_jitter_apply / three_augment_apply -> normalise, in
    // fewer passes: byte maps composed and applied by the normalise, the flip folded into its
    // writes (data/fused_color.h).
    // The resized crop goes into a per-thread image reused from sample to sample.
    thread_local Image x;
    resize_box_into(region, sub, opt.size, opt.size, opt.interp, x, opt.resize);
    ChannelLut lut;
    if (p.jitter) fused_color_apply(x, nullptr, &*p.jitter, lut);
    if (p.three) fused_color_apply(x, &*p.three, p.three->jitter ? &*p.three->jitter : nullptr, lut);
    to_tensor_normalized_lut_into(x, lut, p.flip, opt.mean, opt.std, out);
  }
  for (const CropBox& b : p.erase) chw::erase_(out, b, opt.erase_mode, rd.generator());
}

Tensor train_transform(const uint8_t* data, size_t size, const std::string& label, const TrainTransformOptions& opt,
                       const RandAugment* ra, RandomDraws& rd) {
  Tensor t = empty({3, opt.size, opt.size}, DType::f32);
  train_transform_into(data, size, label, opt, ra, rd, t);
  return t;
}

void eval_transform_into(const Image& im, const EvalTransformOptions& opt, const Tensor& out) {
  if (!(opt.crop_pct > 0 && opt.crop_pct <= 1))
    throw std::invalid_argument("eval_transform: crop_pct must be in (0, 1], got " + std::to_string(opt.crop_pct));
  const int scale = int(std::floor(opt.size / opt.crop_pct));  // timm: math.floor(img_size / crop_pct)
  to_tensor_normalized_into(center_crop(resize_short_side(im, scale, opt.interp), opt.size, opt.size), opt.mean, opt.std,
                            out);
}

Tensor eval_transform(const Image& im, const EvalTransformOptions& opt) {
  Tensor t = empty({3, opt.size, opt.size}, DType::f32);
  eval_transform_into(im, opt, t);
  return t;
}

Tensor eval_transform(const uint8_t* data, size_t size, const std::string& label, const EvalTransformOptions& opt) {
  Tensor t = empty({3, opt.size, opt.size}, DType::f32);
  eval_transform_into(data, size, label, opt, t);
  return t;
}

void eval_transform_into(const uint8_t* data, size_t size, const std::string& label, const EvalTransformOptions& opt,
                         const Tensor& out) {
  DecodeOptions dopt;
  dopt.exif_orientation = opt.exif_orientation;
  if (opt.scaled_decode) {
    // The short side must stay >= the resize target; asking both sides for it is enough.
    const int scale = int(std::floor(opt.size / opt.crop_pct));
    dopt.min_height = dopt.min_width = scale;
    const ImageInfo info = peek_image(data, size, label, opt.exif_orientation);
    // Only the short side matters: relax the long one.
    if (info.height > info.width) dopt.min_height = 0;
    else dopt.min_width = 0;
  }
  eval_transform_into(decode_image(data, size, label, dopt), opt, out);
}

}  // namespace rv::data
