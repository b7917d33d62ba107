// fashion_mnist_dataset.h: data::FashionMnistDataset, Fashion-MNIST as a Dataset for the loader,
// with its training and evaluation transforms on the (1, 28, 28) float image.
//
//   evaluation: resize 28 -> R (whole image)                      -> normalise
//   training:   RandomResizedCrop (scale 0.35..1, ratio 3/4..4/3)  -> R, flip with p = 0.5
//               -> normalise -> random erasing (off by default)
//
// Scale augmentation matters here beyond regularisation: the multi-resolution comparison of
// RoPE against absolute position embeddings evaluates at sizes it did not train at, and a
// model that saw objects at many scales is what makes that comparison about the position
// encoding. The crop's lower scale is 0.35 rather than ImageNet's 0.08 because a 28x28 image
// cropped to 8% keeps 8x8 pixels of a garment.
// All randomness comes from the Generator get() is given (the loader's per-sample stream),
// drawn in a fixed order: the crop box, the flip, then the erasing.
#pragma once
#include <memory>
#include <string>

#include "data/augment_params.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/tensor_transforms.h"

namespace rv::data {

struct FashionMnistTransform {
  int64_t resolution = 28;  // output side R (a loader request overrides it per batch)
  bool train = false;       // augment (training) or only resize (evaluation)
  chw::ResizeOptions resize = {.interp = chw::Interp::bicubic, .antialias = true};
  RandomResizedCropOptions crop = {.scale_min = 0.35, .scale_max = 1.0};
  double hflip = 0.5;  // probability of a horizontal flip
  RandomErasingOptions erase = {.probability = 0.0};  // timm's --reprob; 0 disables
  chw::EraseMode erase_mode = chw::EraseMode::per_pixel;
  double mean = 0.2860, std = 0.3530;  // of the training set's pixels in [0, 1]
};

class FashionMnistDataset : public Dataset {
 public:
  // images u8 (N, H, W), labels i64 (N,) with values 0..9; `name` starts describe().
  FashionMnistDataset(Tensor images, Tensor labels, FashionMnistTransform transform, std::string name);
  // One split read from `dir` (FashionMnist::open).
  static std::shared_ptr<FashionMnistDataset> open(const std::string& dir, FashionMnist::Split split,
                                                   FashionMnistTransform transform);

  int64_t size() const override { return labels_.numel(); }
  int64_t num_classes() const override { return FashionMnist::kClasses; }
  Sample get(int64_t index, Generator& gen) const override;
  std::string describe() const override;
  Shape sample_shape(const SampleRequest& req) const override;
  int64_t get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const override;
  const FashionMnistTransform& transform() const { return tf_; }

 private:
  Tensor images_, labels_;
  FashionMnistTransform tf_;
  std::string name_;
};

}  // namespace rv::data
