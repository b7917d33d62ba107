// seg_dataset.h: data::SegmentationDataset, an ADE20k-layout split (data/ade20k.h) as a Dataset
// with dense labels, with mmseg's ADE20k train and eval pipelines (data/seg_transforms.h).
//
//   train: read -> RandomResize(scale, ratio 0.5..2, keep_ratio) -> RandomCrop(S, cat_max_ratio 0.75)
//          -> RandomFlip(0.5) -> PhotoMetricDistortion -> normalise -> pad to S x S
//          sample: image (3, S, S) f32 (pad 0 after normalising), label map (S, S) u8 (pad 255)
//   eval:  read -> Resize(scale, keep_ratio) of the image -> normalise; the label map stays at
//          the image's original size (mmseg scores at that size, resizing the logits to it)
//          sample: image (3, h, w) f32 with h, w varying per image, label map (H, W) u8
//
// S = 512 and scale = (2048, 512) are mmseg's ADE20k settings; SegTransform::for_size(S) keeps
// their ratio for smaller data (the synthetic scenes: S = 128, scale (512, 128)). Eval samples
// differ in size from image to image, so an eval Loader needs batch_size 1 (as mmseg's test
// loader uses) unless all images have one size; the loader says so when shapes differ.
// Randomness: only from the Generator get() is given, drawn in a fixed order (resize ratio, crop
// offsets (1 to 11 pairs), flip, photometric coins and values), so batches are the same on any
// number of loader workers.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <utility>

#include "data/ade20k.h"
#include "data/dataset.h"
#include "data/seg_transforms.h"

namespace rv::data {

struct SegTransform {
  bool train = false;
  int64_t crop = 512;                                  // S: crop and pad size (train)
  std::array<int64_t, 2> scale = {2048, 512};          // (long, short) bound of (Random)Resize
  double ratio_lo = 0.5, ratio_hi = 2.0;               // RandomResize's ratio_range
  double cat_max_ratio = 0.75;                         // RandomCrop
  double hflip = 0.5;                                  // RandomFlip's prob
  bool photometric = true;                             // PhotoMetricDistortion on / off
  PhotoMetricOptions photometric_options = {};
  std::array<float, 3> mean = kSegMean, stdev = kSegStd;  // SegDataPreProcessor, RGB, 0..255 units

  // mmseg's ADE20k settings at crop size S: scale (4 S, S).
  static SegTransform for_size(int64_t S, bool train);
};

class SegmentationDataset : public Dataset {
 public:
  SegmentationDataset(Ade20k files, SegTransform transform, std::string name);
  // Ade20k::open(root, split, options) with `name` "<root> <split>".
  static std::shared_ptr<SegmentationDataset> open(const std::string& root, const std::string& split,
                                                   SegTransform transform, Ade20kOptions options = {});

  int64_t size() const override { return files_.size(); }
  int64_t num_classes() const override { return files_.num_classes(); }
  Sample get(int64_t index, Generator& gen) const override;
  std::string describe() const override;
  Shape sample_shape(const SampleRequest& req) const override;
  bool has_label_maps() const override { return true; }
  Shape label_map_shape(const SampleRequest& req) const override;
  int64_t get_into_with_label_map(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out,
                                  const Tensor& label_map_out) const override;

  // The uint8 image and label map after the transforms, before normalisation and padding (the
  // eval label map at its original size): what get() normalises, for tests and pictures.
  std::pair<Image, Image> transformed(int64_t index, Generator& gen) const;
  const Ade20k& files() const { return files_; }
  const SegTransform& transform() const { return tf_; }

 private:
  Ade20k files_;
  SegTransform tf_;
  std::string name_;
};

}  // namespace rv::data
