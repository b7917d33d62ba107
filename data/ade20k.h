// ade20k.h: data::Ade20k, one split of an ADE20k-layout segmentation set (ADEChallengeData2016, or
// the synthetic scenes `ropevit make-scenes` writes in the same layout), as mmseg reads it.
//
//   ROOT/images/training/ADE_train_00000001.jpg       ROOT/annotations/training/ADE_train_00000001.png
//   ROOT/images/validation/ADE_val_00000001.jpg       ROOT/annotations/validation/ADE_val_00000001.png
//
//   Ade20k val = Ade20k::open(root, "validation");              // 150 classes, reduce_zero_label
//   Image rgb = val.read_image(i);  Image labels = val.read_labels(i);   // labels: 0..149, 255
//
// The listing is mmseg's BaseSegDataset: every `*.jpg` of images/<split> (not recursive), sorted by
// name (byte order, as Python sorts str), each paired with annotations/<split>/<same stem>.png.
// Labels are the PNG's raw values (palette index or grey value, data/decode_image.h), and with
// reduce_zero_label (mmseg's ADE20KDataset fixes it to true) 0 ("other") becomes 255 (ignored),
// v becomes v - 1, and 255 stays 255. A value that is then neither 255 nor below num_classes is an
// error naming the file: a class list that does not fit the files must not train silently.
// Errors (a missing folder or annotation, an unreadable file, a label map whose size differs from
// its image) are std::runtime_error naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace rv::data {

// mmseg's ADE20KDataset METAINFO classes (150, in label order; "bed " keeps mmseg's trailing space).
const std::vector<std::string>& ade20k_class_names();
// The synthetic scenes' classes (data/scene_files.h): the ten Fashion-MNIST classes, stored as
// class + 1 with 0 = background, so reduce_zero_label gives labels 0..9 and background is ignored.
const std::vector<std::string>& scene_class_names();

struct Ade20kOptions {
  bool reduce_zero_label = true;
  std::vector<std::string> class_names = ade20k_class_names();
};

class Ade20k {
 public:
  // `split`: "training" or "validation" (any folder name is accepted).
  static Ade20k open(const std::string& root, const std::string& split, Ade20kOptions options = {});

  int64_t size() const { return int64_t(images_.size()); }
  int64_t num_classes() const { return int64_t(opt_.class_names.size()); }
  const std::vector<std::string>& class_names() const { return opt_.class_names; }
  bool reduce_zero_label() const { return opt_.reduce_zero_label; }
  const std::string& root() const { return root_; }
  const std::string& split() const { return split_; }
  const std::string& image_path(int64_t i) const;
  const std::string& annotation_path(int64_t i) const;

  // RGB, 3 channels (decode_image.h: EXIF orientation applied, as mmcv's imfrombytes does).
  Image read_image(int64_t i) const;
  // The label map, 1 channel, after reduce_zero_label; its size must be `expect_h` x `expect_w`
  // when those are given (> 0): the image's size.
  Image read_labels(int64_t i, int expect_h = 0, int expect_w = 0) const;

  // mmseg's LoadAnnotations(reduce_zero_label=True) on raw values, in place: 0 -> 255,
  // v -> v - 1, 255 -> 255.
  static void reduce_zero_label_(Image& labels);

 private:
  std::string root_, split_;
  Ade20kOptions opt_;
  std::vector<std::string> images_, annotations_;
  void check_index(int64_t i) const;
};

}  // namespace rv::data
