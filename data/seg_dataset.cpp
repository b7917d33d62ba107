// seg_dataset.cpp: SegmentationDataset, mmseg's ADE20k pipelines over an Ade20k split (see
// seg_dataset.h).
#include "data/seg_dataset.h"

#include <stdexcept>

#include "data/image_ops.h"
#include "data/random_draws.h"

namespace rv::data {

namespace {

std::string fmt(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

SegTransform SegTransform::for_size(int64_t S, bool train) {
  if (S < 1) throw std::invalid_argument("SegTransform::for_size: size must be >= 1, got " + std::to_string(S));
  SegTransform t;
  t.train = train;
  t.crop = S;
  t.scale = {4 * S, S};
  return t;
}

SegmentationDataset::SegmentationDataset(Ade20k files, SegTransform transform, std::string name)
    : files_(std::move(files)), tf_(std::move(transform)), name_(std::move(name)) {
  const SegTransform& t = tf_;
  if (t.crop < 1 || t.scale[0] < 1 || t.scale[1] < 1 || !(t.ratio_lo > 0 && t.ratio_hi >= t.ratio_lo) ||
      !(t.hflip >= 0 && t.hflip <= 1))
    throw std::invalid_argument("SegmentationDataset: expected crop >= 1, scale >= 1, 0 < ratio_lo <= ratio_hi and "
                                "hflip in [0, 1], got crop " + std::to_string(t.crop) + ", scale (" +
                                std::to_string(t.scale[0]) + ", " + std::to_string(t.scale[1]) + "), ratio " +
                                fmt(t.ratio_lo) + ".." + fmt(t.ratio_hi) + ", hflip " + fmt(t.hflip));
}

std::shared_ptr<SegmentationDataset> SegmentationDataset::open(const std::string& root, const std::string& split,
                                                               SegTransform transform, Ade20kOptions options) {
  return std::make_shared<SegmentationDataset>(Ade20k::open(root, split, std::move(options)), std::move(transform),
                                               root + " " + split);
}

std::pair<Image, Image> SegmentationDataset::transformed(int64_t index, Generator& gen) const {
  Image img = files_.read_image(index);
  Image lab = files_.read_labels(index, img.height, img.width);
  if (!tf_.train) {
    seg_resize_keep_ratio(img, nullptr, tf_.scale);  // the label map keeps its size
    return {std::move(img), std::move(lab)};
  }
  const double ratio = draw_resize_ratio(gen, tf_.ratio_lo, tf_.ratio_hi);
  seg_resize_keep_ratio(img, &lab, random_resize_target(tf_.scale, ratio));
  const CropBox box = draw_seg_crop(lab, gen, {.height = tf_.crop, .width = tf_.crop, .cat_max_ratio = tf_.cat_max_ratio});
  img = crop(img, int(box.top), int(box.left), int(box.height), int(box.width));
  lab = crop(lab, int(box.top), int(box.left), int(box.height), int(box.width));
  if (draw_bernoulli(gen, tf_.hflip)) {
    img = hflip(img);
    lab = hflip(lab);
  }
  if (tf_.photometric) photometric_distort_(img, draw_photometric(gen, tf_.photometric_options));
  return {std::move(img), std::move(lab)};
}

Sample SegmentationDataset::get(int64_t index, Generator& gen) const {
  auto [img, lab] = transformed(index, gen);
  const int64_t h = tf_.train ? tf_.crop : img.height, w = tf_.train ? tf_.crop : img.width;
  const int64_t lh = tf_.train ? tf_.crop : lab.height, lw = tf_.train ? tf_.crop : lab.width;
  Sample s;
  s.image = empty({3, h, w}, DType::f32);
  s.label_map = empty({lh, lw}, DType::u8);
  normalize_pad_into(img, s.image, tf_.mean, tf_.stdev);
  label_pad_into(lab, s.label_map);
  return s;
}

Shape SegmentationDataset::sample_shape(const SampleRequest& req) const {
  if (!tf_.train || req.has_size()) return {};  // eval sizes vary; no resizing on request
  return {3, tf_.crop, tf_.crop};
}

Shape SegmentationDataset::label_map_shape(const SampleRequest& req) const {
  if (!tf_.train || req.has_size()) return {};
  return {tf_.crop, tf_.crop};
}

int64_t SegmentationDataset::get_into_with_label_map(int64_t index, Generator& gen, const SampleRequest& req,
                                                     const Tensor& out, const Tensor& label_map_out) const {
  if (!tf_.train || req.has_size()) return Dataset::get_into_with_label_map(index, gen, req, out, label_map_out);
  if (out.dim() != 3 || out.size(1) != tf_.crop || out.size(2) != tf_.crop || label_map_out.dim() != 2 ||
      label_map_out.size(0) != tf_.crop || label_map_out.size(1) != tf_.crop)
    throw std::invalid_argument("SegmentationDataset::get_into_with_label_map: expected rows (3, " +
                                std::to_string(tf_.crop) + ", " + std::to_string(tf_.crop) + ") and (" +
                                std::to_string(tf_.crop) + ", " + std::to_string(tf_.crop) + "), got " +
                                shape_str(out.shape()) + " and " + shape_str(label_map_out.shape()));
  auto [img, lab] = transformed(index, gen);
  normalize_pad_into(img, out, tf_.mean, tf_.stdev);  // checks dtype and contiguity too
  label_pad_into(lab, label_map_out);
  return 0;
}

std::string SegmentationDataset::describe() const {
  std::string s = name_ + ", " + std::to_string(size()) + " images, " + std::to_string(num_classes()) + " classes" +
                  (files_.reduce_zero_label() ? " (reduce_zero_label)" : "") + ", ";
  // Appends, not "(" + to_string(...): GCC 12 warns (-Wrestrict, falsely) on that form.
  std::string scale = "(";
  scale += std::to_string(tf_.scale[0]);
  scale += ", ";
  scale += std::to_string(tf_.scale[1]);
  scale += ")";
  if (!tf_.train) return s + "eval: resize to " + scale + " keeping the ratio, labels at the original size";
  return s + "train: resize " + scale + " x " + fmt(tf_.ratio_lo) + ".." + fmt(tf_.ratio_hi) + ", crop " +
         std::to_string(tf_.crop) + " (cat_max_ratio " + fmt(tf_.cat_max_ratio) + "), flip " + fmt(tf_.hflip) +
         (tf_.photometric ? ", photometric distortion" : "") + ", pad to " + std::to_string(tf_.crop);
}

}  // namespace rv::data
