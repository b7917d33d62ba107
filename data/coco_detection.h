// coco_detection.h: data::CocoDetectionDataset, a COCO 2017 detection split as a Dataset: the image,
// transformed (det_augment.h) and normalised, plus its boxes, labels, ignore regions and the
// meta that maps boxes back to the original image (det_target.h).
//
//   CocoDetectionDataset train({.root = "data/coco", .split = "train",
//                        .transform = {.augment = DetAugment::lsj}});
//   Loader loader(std::make_shared<CocoDetectionDataset>(std::move(train)),
//                 {.batch_size = 2, .seed = 0, .pad = PadOptions{.min_height = 1024, .min_width = 1024}});
//
// Files: <root>/annotations/instances_<split>2017.json and <root>/<split>2017/<file_name> (either
// can be given instead). Training (train = true) keeps the images mmdet's filter_empty_gt keeps
// (at least one annotation, shorter side >= min_size); evaluation keeps all, in file order.
// Pixels: decoded RGB (EXIF orientation applied, as cv2.imread), every geometric transform on
// uint8, then (v - mean) / std with mmdet's mean (123.675, 116.28, 103.53) and std (58.395,
// 57.12, 57.375) in float32 (mmdet's DetDataPreprocessor, bgr_to_rgb: RGB order).
// The decoded size must equal the annotation's width x height (else the boxes would not fit):
// a mismatch, like a missing or corrupt file, is an error naming the file.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/dataset.h"
#include "data/det_augment.h"

namespace rv::data {

inline constexpr std::array<float, 3> kMmdetMean = {123.675f, 116.28f, 103.53f};
inline constexpr std::array<float, 3> kMmdetStd = {58.395f, 57.12f, 57.375f};

struct CocoDetectionOptions {
  std::string root = "";        // holds annotations/ and <split>2017/
  std::string split = "train";  // "train" | "val" (any name: <split>2017)
  std::string annotation_file = "";  // "" = <root>/annotations/instances_<split>2017.json
  std::string image_dir = "";        // "" = <root>/<split>2017
  bool train = true;            // true: filter_empty_gt; false: every image (evaluation)
  int64_t min_size = 32;        // filter_empty_gt's shorter-side minimum
  DetTransformOptions transform = {};
  std::array<float, 3> mean = kMmdetMean, std = kMmdetStd;  // on the 0..255 scale
};

class CocoDetectionDataset : public Dataset {
 public:
  explicit CocoDetectionDataset(CocoDetectionOptions options);

  int64_t size() const override { return int64_t(kept_.size()); }
  int64_t num_classes() const override { return coco_->num_classes(); }
  // Sample::image (3, h, w) f32 normalised, Sample::label 0, Sample::targets set.
  Sample get(int64_t index, Generator& gen) const override;
  std::string describe() const override;

  const CocoInstances& coco() const { return *coco_; }
  // Index into coco().images() of sample `index`.
  int64_t image_index(int64_t index) const;
  const CocoDetectionOptions& options() const { return opt_; }
  std::string image_path(int64_t index) const;

 private:
  CocoDetectionOptions opt_;
  std::shared_ptr<const CocoInstances> coco_;
  std::vector<int64_t> kept_;  // indices into coco_->images()
};

// (3, H, W) f32: (v - mean[c]) / std[c] in float, the uint8 image in RGB.
Tensor normalize_det_image(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev);

}  // namespace rv::data
