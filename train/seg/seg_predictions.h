// seg_predictions.h: prediction pictures of `ropevit eval --pred-dir DIR` for segmentation: per
// evaluated image, two 8-bit PNG files named after the image's stem (ADE_val_00000001.jpg ->
// ADE_val_00000001.png):
//
//   DIR/labels/<stem>.png    the predicted label map (H, W) at the image's original size, in the
//                            ADE20k annotation format: class i written as i + 1, 0 = "other"
//                            (the inverse of reduce_zero_label, so the files can be scored like
//                            ground truth, or submitted to the ADE20k benchmark); grey, lossless
//   DIR/overlays/<stem>.png  for people: the original image blended 0.5 with the class colours
//                            (data/seg_palette.h: mmseg's ADE20k palette for ADE20k, generated
//                            colours otherwise): uint8((image + colour) / 2), truncated, as
//                            mmseg's SegLocalVisualizer with alpha 0.5
//
// Each file is written to a temporary name and renamed (engine/io/atomic_file.h), so an
// interrupted run leaves whole files only. The PNGs come from data/image_encode.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/seg_palette.h"
#include "engine/tensor.h"

namespace rv::train::seg {

// pred: (H, W) integer class indices in [0, num_classes) -> (H, W) u8 in ADE20k's format (i + 1).
// num_classes must be at most 254 (255 stays the "ignore" value of annotation files).
data::Image prediction_to_ade20k(const Tensor& pred, int64_t num_classes);

// image: (H, W, 3) RGB at pred's size; pred: (H, W) classes into `palette`.
data::Image prediction_overlay(const data::Image& image, const Tensor& pred, const std::vector<data::Rgb>& palette);

class SegPredictionWriter {
 public:
  // Creates DIR/labels and DIR/overlays; the palette follows the class list (seg_palette).
  SegPredictionWriter(std::string dir, const std::vector<std::string>& class_names);
  // Writes both files of one image. pred: (H, W) at the original image's size (an error names
  // the image when the sizes differ).
  void write(const std::string& image_path, const Tensor& pred, const data::Image& image) const;
  const std::string& dir() const { return dir_; }
  std::string labels_dir() const { return dir_ + "/labels"; }
  std::string overlays_dir() const { return dir_ + "/overlays"; }

 private:
  std::string dir_;
  int64_t num_classes_;
  std::vector<data::Rgb> palette_;
};

}  // namespace rv::train::seg
