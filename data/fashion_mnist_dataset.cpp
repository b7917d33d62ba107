// fashion_mnist_dataset.cpp: a Fashion-MNIST sample through its transform pipeline, written
// straight into the loader's batch row.
#include "data/fashion_mnist_dataset.h"

#include <stdexcept>

#include "data/random_draws.h"

namespace rv::data {

FashionMnistDataset::FashionMnistDataset(Tensor images, Tensor labels, FashionMnistTransform transform,
                                         std::string name)
    : tf_(transform), name_(std::move(name)) {
  if (!images.defined() || images.dtype() != DType::u8 || images.dim() != 3)
    throw std::invalid_argument("FashionMnistDataset: images must be uint8 (N, H, W), got " +
                                (images.defined() ? std::string(dtype_name(images.dtype())) + " " +
                                                        shape_str(images.shape())
                                                  : std::string("an undefined tensor")));
  if (!labels.defined() || labels.dtype() != DType::i64 || labels.dim() != 1 || labels.size(0) != images.size(0))
    throw std::invalid_argument("FashionMnistDataset: labels must be int64 (N,) with N = " +
                                std::to_string(images.size(0)) + " (one per image)");
  if (images.size(1) < 1 || images.size(2) < 1)
    throw std::invalid_argument("FashionMnistDataset: images must be at least 1x1");
  if (tf_.resolution < 1)
    throw std::invalid_argument("FashionMnistDataset: resolution must be >= 1, got " + std::to_string(tf_.resolution));
  if (!(tf_.std > 0)) throw std::invalid_argument("FashionMnistDataset: std must be > 0");
  images_ = images.contiguous();
  labels_ = labels.contiguous();
  const int64_t* l = labels_.data<int64_t>();
  for (int64_t i = 0; i < labels_.numel(); ++i)
    if (l[i] < 0 || l[i] >= FashionMnist::kClasses)
      throw std::invalid_argument("FashionMnistDataset: label " + std::to_string(l[i]) + " of image " +
                                  std::to_string(i) + " is outside 0..9");
}

std::shared_ptr<FashionMnistDataset> FashionMnistDataset::open(const std::string& dir, FashionMnist::Split split,
                                                               FashionMnistTransform transform) {
  FashionMnist fm = FashionMnist::open(dir, split);
  return std::make_shared<FashionMnistDataset>(fm.images(), fm.labels(), transform,
                                               split == FashionMnist::Split::train ? "fashion-mnist train"
                                                                                   : "fashion-mnist test");
}

std::string FashionMnistDataset::describe() const {
  const std::string r = std::to_string(tf_.resolution);
  return name_ + ", " + std::to_string(size()) + " images, " + std::to_string(images_.size(1)) + "x" +
         std::to_string(images_.size(2)) + " -> " + r + "x" + r + (tf_.train ? " (augmented)" : "");
}

Shape FashionMnistDataset::sample_shape(const SampleRequest& req) const {
  if (req.has_size()) return {1, req.height, req.width};
  return {1, tf_.resolution, tf_.resolution};
}

Sample FashionMnistDataset::get(int64_t index, Generator& gen) const {
  Tensor img = empty(sample_shape({}));
  const int64_t label = get_into(index, gen, {}, img);
  return {img, label};
}

int64_t FashionMnistDataset::get_into(int64_t index, Generator& gen, const SampleRequest& req,
                                      const Tensor& out) const {
  if (index < 0 || index >= size())
    throw std::out_of_range("FashionMnistDataset::get: index " + std::to_string(index) + " is outside 0 .. " +
                            std::to_string(size() - 1));
  if (req.has_size() && (req.height < 1 || req.width < 1))
    throw std::invalid_argument("FashionMnistDataset::get_into: a requested size needs both sides >= 1");
  const Shape want = sample_shape(req);
  if (out.shape() != want)
    throw std::invalid_argument("FashionMnistDataset::get_into: out must be " + shape_str(want) + ", got " +
                                shape_str(out.shape()));
  // The u8 image as floats in [0, 1] (ToTensor), a (1, H, W) tensor of 784 floats.
  const int64_t H = images_.size(1), W = images_.size(2);
  Tensor src = empty({1, H, W});
  const uint8_t* px = images_.data<uint8_t>() + index * H * W;
  float* s = src.data<float>();
  for (int64_t i = 0; i < H * W; ++i) s[i] = float(px[i]) / 255.0f;

  if (!tf_.train) {
    chw::resized_crop_into(src, {0, 0, H, W}, out, tf_.resize);
  } else {
    const CropBox box = random_resized_crop_params(H, W, gen, tf_.crop);
    chw::resized_crop_into(src, box, out, tf_.resize);
    if (draw_bernoulli(gen, tf_.hflip)) chw::hflip_(out);
  }
  chw::normalize_(out, {tf_.mean}, {tf_.std});
  if (tf_.train && tf_.erase.probability > 0) {
    if (auto box = random_erasing_params(out.size(1), out.size(2), gen, tf_.erase))
      chw::erase_(out, *box, tf_.erase_mode, gen);
  }
  return labels_.data<int64_t>()[index];
}

}  // namespace rv::data
