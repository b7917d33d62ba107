// det_augment.cpp: draws and applies the detection transforms (see det_augment.h for the recipes).
#include "data/det_augment.h"

#include <algorithm>
#include <stdexcept>

#include "data/random_draws.h"

namespace rv::data {

DetAugment det_augment_from_name(const std::string& name) {
  if (name == "resize") return DetAugment::resize;
  if (name == "resize_flip") return DetAugment::resize_flip;
  if (name == "lsj") return DetAugment::lsj;
  throw std::invalid_argument("det_augment_from_name: expected 'resize', 'resize_flip' or 'lsj', got '" + name + "'");
}

const char* det_augment_name(DetAugment a) {
  switch (a) {
    case DetAugment::resize: return "resize";
    case DetAugment::resize_flip: return "resize_flip";
    case DetAugment::lsj: return "lsj";
  }
  return "?";
}

namespace {

void check_options(const DetTransformOptions& o) {
  auto bad = [](const std::string& what, const std::string& got) {
    throw std::invalid_argument("det_params: " + what + ", got " + got);
  };
  if (o.long_side < 1 || o.short_side < 1)
    bad("long_side, short_side: expected >= 1", std::to_string(o.long_side) + ", " + std::to_string(o.short_side));
  if (!(o.flip >= 0 && o.flip <= 1)) bad("flip: expected a probability in [0, 1]", std::to_string(o.flip));
  if (o.lsj_height < 1 || o.lsj_width < 1)
    bad("lsj_height, lsj_width: expected >= 1", std::to_string(o.lsj_height) + ", " + std::to_string(o.lsj_width));
  if (!(o.ratio_min > 0 && o.ratio_min <= o.ratio_max))
    bad("ratio_min, ratio_max: expected 0 < min <= max", std::to_string(o.ratio_min) + ", " + std::to_string(o.ratio_max));
  if (!(o.min_box >= 0)) bad("min_box: expected >= 0", std::to_string(o.min_box));
}

}  // namespace

DetParams det_params(int64_t H, int64_t W, const DetTransformOptions& opt, Generator& gen) {
  check_options(opt);
  if (H < 1 || W < 1)
    throw std::invalid_argument("det_params: image size: expected >= 1x1, got " + std::to_string(H) + "x" +
                                std::to_string(W));
  DetParams p;
  if (opt.augment != DetAugment::lsj) {
    const auto [h, w] = keep_ratio_size(H, W, opt.long_side, opt.short_side);
    p.resized_height = h;
    p.resized_width = w;
    p.flip = opt.augment == DetAugment::resize_flip && draw_bernoulli(gen, opt.flip);
    return p;
  }
  // RandomResize: ratio uniform in [min, max) (numpy's random_sample() * (max - min) + min), the
  // target scale int(side * ratio) per side, then mmcv's keep-ratio rescale to that scale.
  p.ratio = draw_uniform(gen, opt.ratio_min, opt.ratio_max);
  const int64_t th = std::max<int64_t>(1, int64_t(double(opt.lsj_height) * p.ratio));
  const int64_t tw = std::max<int64_t>(1, int64_t(double(opt.lsj_width) * p.ratio));
  const auto [h, w] = keep_ratio_size(H, W, std::max(th, tw), std::min(th, tw));
  p.resized_height = h;
  p.resized_width = w;
  // RandomCrop 'absolute_range' with equal ends: the crop is min(side, crop) per axis; the
  // offset is uniform over the margin, top first (mmdet's _rand_offset).
  CropBox c;
  c.height = std::min(h, opt.lsj_height);
  c.width = std::min(w, opt.lsj_width);
  c.top = draw_int(gen, 0, h - c.height);
  c.left = draw_int(gen, 0, w - c.width);
  p.crop = c;
  p.flip = draw_bernoulli(gen, opt.flip);
  return p;
}

DetImage apply_det_transform(const DetImage& d, const DetParams& p, const DetTransformOptions& opt, DetImageMeta* meta) {
  const int64_t H = d.image.height, W = d.image.width;
  DetImage r = det_resize(d, p.resized_height, p.resized_width);
  if (p.crop) {
    r = det_crop(r, *p.crop);
    det_filter_small_(r, opt.min_box);
  }
  if (p.flip) det_hflip_(r);
  if (meta) {
    meta->height = r.image.height;
    meta->width = r.image.width;
    meta->scale_x = double(p.resized_width) / double(W);
    meta->scale_y = double(p.resized_height) / double(H);
    meta->crop_top = p.crop ? p.crop->top : 0;
    meta->crop_left = p.crop ? p.crop->left : 0;
    meta->flip = p.flip;
  }
  return r;
}

}  // namespace rv::data
